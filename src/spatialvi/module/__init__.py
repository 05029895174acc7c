"""Torch modules (scvi-tools BaseModuleClass) holding each model's maths."""

from spatialvi.module._adagvae import AdaGVAEModule
from spatialvi.module._dpvae import DPVAEModule
from spatialvi.module._sivae import SIVAEModule
from spatialvi.module._spaldvae import SpaLDVAEModule
from spatialvi.module._spavae import SpaVAEModule

__all__ = ["AdaGVAEModule", "DPVAEModule", "SIVAEModule", "SpaLDVAEModule", "SpaVAEModule"]
