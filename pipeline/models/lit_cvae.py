"""`LitCVAE`: the training logic around `CVAE` (ELBO with beta and KL warm-up, logging)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from pipeline.errors import PipelineError
from pipeline.models.cvae import CVAE


class LitCVAE(pl.LightningModule):
    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        class_names: list[str],
        latent_dim: int = 16,
        hidden: int = 32,
        likelihood: str = "bernoulli",
        lr: float = 2e-3,
        beta: float = 1.0,
        kl_warmup_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # lets `generate` rebuild the model from the checkpoint alone
        self.model = CVAE(channels, height, width, len(class_names), latent_dim, hidden, likelihood)

    def kl_weight(self) -> float:
        warmup = self.hparams.kl_warmup_epochs
        ramp = 1.0 if warmup == 0 else min(1.0, (self.current_epoch + 1) / warmup)
        return self.hparams.beta * ramp

    def _shared_step(self, batch, stage: str) -> torch.Tensor:
        x, y, _ = batch
        recon, kl = self.model.loss_terms(x, y)
        elbo = -(recon + kl).mean()  # the true bound, whatever beta: comparable across runs
        loss = recon.mean() + self.kl_weight() * kl.mean()
        on_step = False
        self.log(f"{stage}/elbo", elbo, on_step=on_step, on_epoch=True, prog_bar=stage == "val", batch_size=len(x))
        self.log(f"{stage}/recon", recon.mean(), on_step=on_step, on_epoch=True, batch_size=len(x))
        self.log(f"{stage}/kl", kl.mean(), on_step=on_step, on_epoch=True, batch_size=len(x))
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._shared_step(batch, "train")
        if not torch.isfinite(loss):
            raise PipelineError(
                f"vae: the training loss became {loss.item()} at epoch {self.current_epoch}; "
                f"lower vae.lr (now {self.hparams.lr})"
            )
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
