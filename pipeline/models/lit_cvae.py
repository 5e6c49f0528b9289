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
        free_bits: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # lets `generate` rebuild the model from the checkpoint alone
        self.model = CVAE(channels, height, width, len(class_names), latent_dim, hidden, likelihood)

    def kl_weight(self, epoch: int) -> float:
        warmup = self.hparams.kl_warmup_epochs
        ramp = 1.0 if warmup == 0 else min(1.0, (epoch + 1) / warmup)
        return self.hparams.beta * ramp

    def kl_penalty(self, kl_per_dim: torch.Tensor) -> torch.Tensor:
        """The KL term the optimizer sees, from (B, D) per-dimension KL. With free bits, each
        dimension's batch-mean KL counts at least `free_bits` nats, so the encoder gains nothing by
        collapsing a dimension onto the prior (on a handful of images per class a plain VAE does,
        and samples little more than class averages)."""
        per_dim = kl_per_dim.mean(0)
        return per_dim.clamp(min=self.hparams.free_bits).sum() if self.hparams.free_bits else per_dim.sum()

    def on_train_epoch_start(self) -> None:
        self._train_sums = torch.zeros(3, device=self.device)  # -ELBO terms summed over images
        self._train_seen = 0

    def objective(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss to minimise, per-image reconstruction NLL (B,), per-image KL (B,)) at `epoch`:
        the one definition of what training optimises, also used by the benchmark's plain loop."""
        recon, kl_per_dim = self.model.loss_terms(x, y, per_dim=True)
        loss = recon.mean() + self.kl_weight(epoch) * self.kl_penalty(kl_per_dim)
        return loss, recon, kl_per_dim.sum(1)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        loss, recon, kl = self.objective(x, y, self.current_epoch)
        # Summed here and logged once per epoch: a self.log per step costs Lightning ~1.5 ms of
        # Python, 10-25% of a CPU step of this model (measured with python -m pipeline.bench).
        self._train_sums += torch.stack([(recon + kl).sum(), recon.sum(), kl.sum()]).detach()
        self._train_seen += len(x)
        return loss

    def on_train_epoch_end(self) -> None:
        # Checked once per epoch rather than per step, which would force a GPU sync every step.
        if not torch.isfinite(self._train_sums).all():
            raise PipelineError(
                f"vae: the training loss became nan or inf in epoch {self.current_epoch + 1}; "
                f"lower vae.lr (now {self.hparams.lr})"
            )
        neg_elbo, recon, kl = (self._train_sums / self._train_seen).tolist()
        self.log_dict({"train/elbo": -neg_elbo, "train/recon": recon, "train/kl": kl}, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y, _ = batch
        recon, kl_per_dim = self.model.loss_terms(x, y, per_dim=True)
        kl = kl_per_dim.sum(1)
        # `elbo`: the true bound whatever beta, comparable across runs. `objective`: what training
        # maximises once the warm-up is over (beta, free bits), the criterion of the best epoch:
        # the true bound rewards a latent the decoder ignores, so choosing epochs by it picks the
        # model whose samples are per-class templates. Synced so DDP sees the whole val set.
        objective = -(recon.mean() + self.hparams.beta * self.kl_penalty(kl_per_dim))
        for name, value in (("elbo", -(recon + kl).mean()), ("objective", objective), ("recon", recon.mean()), ("kl", kl.mean())):
            self.log(f"val/{name}", value, on_epoch=True, prog_bar=name == "elbo", batch_size=len(x), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
