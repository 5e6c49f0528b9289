"""`LitCVAE`: the training logic around `CVAE` (ELBO with beta and KL warm-up, logging).

Semi-supervised (M2, Kingma et al. 2014) when built with `semi_supervised=True`: a classifier
q(y|x) joins the model; a batch row with label -1 is unlabeled, and its loss is the ELBO with the
label summed out under q(y|x) (every class enumerated, none sampled) minus the entropy of q(y|x);
labeled rows keep their ELBO and add an `alpha`-weighted cross-entropy of q(y|x), scaled by
N_total / N_labeled as in the paper, without which q(y|x) never learns from the labels.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from pipeline.data.datamodule import UNLABELED
from pipeline.errors import PipelineError
from pipeline.models.classifier import SmallCNN
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
        semi_supervised: bool = False,
        alpha: float = 0.1,
        labeled_share: float = 1.0,
        consistency: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # lets `generate` rebuild the model from the checkpoint alone
        self.model = CVAE(channels, height, width, len(class_names), latent_dim, hidden, likelihood)
        # Built only when used: an extra module would draw from the RNG and change a plain run.
        self.classifier = SmallCNN(channels, len(class_names)) if semi_supervised else None
        # The class-consistency judge: M2's q(y|x) where there is one, else a CNN of its own.
        self.judge = None if consistency == 0 or semi_supervised else SmallCNN(channels, len(class_names))

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
        if self.classifier is None:
            recon, kl_per_dim = self.model.loss_terms(x, y, per_dim=True)
            loss = recon.mean() + self.kl_weight(epoch) * self.kl_penalty(kl_per_dim)
            if self.judge is not None:  # the judge learns the real images; the decoder, to be judged right
                loss = loss + F.cross_entropy(self.judge(x), y) + self.hparams.consistency * self.consistency_loss(self.judge, x, y)
            return loss, recon, kl_per_dim.sum(1)
        labeled = y != UNLABELED
        logits = self.classifier(x)  # (B, K)
        recon_l, kl_l = self.model.loss_terms(x[labeled], y[labeled], per_dim=True)
        log_q = F.log_softmax(logits[~labeled], dim=1)  # (U, K)
        recon_u, kl_u = self.summed_out(x[~labeled], log_q.exp())
        recon, kl_per_dim = torch.cat([recon_l, recon_u]), torch.cat([kl_l, kl_u])
        entropy = -(log_q.exp() * log_q).sum()
        cross_entropy = F.cross_entropy(logits[labeled], y[labeled], reduction="sum")
        alpha = self.hparams.alpha / self.hparams.labeled_share
        loss = (
            recon.mean() + self.kl_weight(epoch) * self.kl_penalty(kl_per_dim)
            + (alpha * cross_entropy - entropy) / len(x)
        )
        if self.hparams.consistency:
            loss = loss + self.hparams.consistency * self.consistency_loss(self.classifier, x[labeled], y[labeled])
        return loss, recon, kl_per_dim.sum(1)

    def consistency_loss(self, judge: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the judge on images decoded with random labels from codes of two
        kinds: drawn from the prior (`prior` sampling), and encoded from the batch's labeled
        images (`borrow`: codes of any class); `len(x)` of them in all. What the decoder (and the
        encoder, for the second kind) pays when the label does not decide the class of the image:
        without it the decoder may read the class from z as well as from the label, and samples
        from codes of other classes' regions show those classes (issue #27: fidelity 0.6-0.8 on
        28x28 letters). The judge's weights are held fixed here, so it cannot learn to call bad
        samples good. A batch without labeled rows (M2) adds nothing."""
        if len(x) == 0:
            return torch.zeros((), device=self.device)
        half = len(x) // 2
        mu, logvar = self.model.encoder(x[:half], y[:half])
        z = torch.cat([torch.randn(len(x) - half, self.model.latent_dim, device=self.device), mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)])
        labels = torch.randint(self.model.num_classes, (len(z),), device=self.device)
        images = torch.sigmoid(self.model.decoder(z, labels))
        frozen = {name: value.detach() for name, value in judge.named_parameters()}
        return F.cross_entropy(torch.func.functional_call(judge, frozen, (images,)), labels)

    def summed_out(self, x: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction NLL (U,) and per-dimension KL (U, D) of unlabeled images, each the
        expectation over labels under q(y|x) (U, K): every image decoded under every class."""
        count, k = q.shape
        every = torch.arange(k, device=x.device).repeat(count)  # (U*K,): image-major
        recon, kl = self.model.loss_terms(x.repeat_interleave(k, dim=0), every, per_dim=True)
        recon = (q * recon.view(count, k)).sum(1)
        kl = (q.unsqueeze(-1) * kl.view(count, k, self.model.latent_dim)).sum(1)
        return recon, kl

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x) as class probabilities (B, K); only a semi-supervised model has it."""
        if self.classifier is None:
            raise PipelineError("vae: this VAE was not trained semi-supervised; it has no q(y|x)")
        return F.softmax(self.classifier(x), dim=1)

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
        metrics = [("elbo", -(recon + kl).mean()), ("objective", objective), ("recon", recon.mean()), ("kl", kl.mean())]
        if self.classifier is not None:
            metrics.append(("accuracy", (self.classifier(x).argmax(1) == y).float().mean()))
        for name, value in metrics:
            self.log(f"val/{name}", value, on_epoch=True, prog_bar=name == "elbo", batch_size=len(x), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
