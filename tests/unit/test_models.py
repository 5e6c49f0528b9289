import pytest
import torch

from pipeline.models.classifier import LitClassifier
from pipeline.models.cvae import CVAE


@pytest.mark.parametrize(("channels", "height", "width"), [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 9, 9), (1, 12, 20)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_cvae_handles_sizes_and_channels(channels: int, height: int, width: int, likelihood: str) -> None:
    model = CVAE(channels, height, width, num_classes=4, latent_dim=6, hidden=8, likelihood=likelihood)
    x = torch.rand(5, channels, height, width)
    y = torch.tensor([0, 1, 2, 3, 0])
    recon, kl = model.loss_terms(x, y)
    assert recon.shape == kl.shape == (5,)
    assert torch.isfinite(recon).all() and (kl >= 0).all()
    out = model.decode(torch.randn(5, 6), y)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_decoder_depends_on_the_label() -> None:
    torch.manual_seed(0)
    model = CVAE(1, 8, 8, num_classes=3, latent_dim=4, hidden=8)
    z = torch.randn(1, 4).repeat(3, 1)
    images = model.decode(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(images[0], images[1])


def test_classifier_features_and_probabilities() -> None:
    module = LitClassifier(channels=3, num_classes=5)
    x = torch.rand(7, 3, 16, 16)
    proba = module.predict_proba(x)
    assert proba.shape == (7, 5)
    assert torch.allclose(proba.sum(1), torch.ones(7), atol=1e-5)
    assert module.features(x).shape[0] == 7


def test_free_bits_floor_each_dimensions_kl() -> None:
    from pipeline.models.lit_cvae import LitCVAE

    module = LitCVAE(1, 8, 8, ["a", "b"], latent_dim=4, free_bits=0.5)
    kl_per_dim = torch.tensor([[0.1, 2.0, 0.0, 0.3], [0.1, 1.0, 0.0, 0.5]])
    # batch means 0.1, 1.5, 0.0, 0.4 -> floored at 0.5 except the 1.5
    assert module.kl_penalty(kl_per_dim).item() == pytest.approx(0.5 + 1.5 + 0.5 + 0.5)
    plain = LitCVAE(1, 8, 8, ["a", "b"], latent_dim=4)
    assert plain.kl_penalty(kl_per_dim).item() == pytest.approx(kl_per_dim.sum(1).mean().item())
