"""User-facing scvi-tools models."""

from spatialvi.model._adagvae import AdaGVAE
from spatialvi.model._dpvae import DPVAE
from spatialvi.model._sivae import SIVAE
from spatialvi.model._spaldvae import SpaLDVAE
from spatialvi.model._spavae import SpaVAE

__all__ = ["DPVAE", "SIVAE", "AdaGVAE", "SpaLDVAE", "SpaVAE"]
