import numpy as np
import pytest
import torch

from pipeline.models.classifier import SmallCNN
from pipeline.models.classify import Classifier
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


def trained_on_bars() -> tuple[CVAE, torch.Tensor, torch.Tensor]:
    """A CVAE fitted (full batch, 300 Adam steps, ~2 s) to 16 bars: the class is the bar's
    direction, the position within a class is what only z can carry."""
    torch.manual_seed(0)
    bars = torch.zeros(16, 1, 8, 8)  # (B, C, H, W)
    for pos in range(8):
        bars[pos, 0, pos, :] = 1.0  # class 0: a horizontal bar in row `pos`
        bars[8 + pos, 0, :, pos] = 1.0  # class 1: a vertical bar in column `pos`
    labels = torch.arange(16) // 8
    model = CVAE(1, 8, 8, num_classes=2, latent_dim=2, hidden=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        recon, kl = model.loss_terms(bars, labels)
        optimizer.zero_grad()
        (recon + kl).mean().backward()
        optimizer.step()
    return model, bars, labels


def horizontal(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B,) bool: row means vary more than column means (a horizontal bar)."""
    return images.mean(2).var(1) > images.mean(1).var(1)


def test_trained_decoder_draws_the_labels_shape_where_z_says() -> None:
    model, bars, labels = trained_on_bars()
    # z: decoding each bar's posterior mean puts the bar back in its own row / column
    mu, _ = model.encode(bars, labels)
    rebuilt = model.decode(mu, labels)[:, 0]  # (16, H, W)
    rows_found = (rebuilt[:8].mean(2).argmax(1) == torch.arange(8)).sum().item()
    cols_found = (rebuilt[8:].mean(1).argmax(1) == torch.arange(8)).sum().item()
    assert rows_found + cols_found >= 14, (rows_found, cols_found)
    # the label: the same prior z draws a horizontal bar for class 0 and a vertical one for class 1
    z = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    as_0 = model.decode(z, torch.zeros(32, dtype=torch.long))[:, 0]
    as_1 = model.decode(z, torch.ones(32, dtype=torch.long))[:, 0]
    assert horizontal(as_0).float().mean() >= 0.75 and (~horizontal(as_1)).float().mean() >= 0.75
    # and z, not the label alone, decides where: prior samples of one class spread over positions
    assert len(set(as_0.mean(2).argmax(1).tolist())) >= 3 and len(set(as_1.mean(1).argmax(1).tolist())) >= 3


def test_classifier_features_and_probabilities() -> None:
    classifier = Classifier(SmallCNN(channels=3, num_classes=5))
    x = np.random.default_rng(0).random((7, 3, 16, 16), dtype=np.float32)
    proba = classifier.predict_proba(x)
    assert proba.shape == (7, 5)
    assert np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert classifier.features(x).shape == (7, 128)


def test_free_bits_floor_each_dimensions_kl() -> None:
    from pipeline.models.lit_cvae import LitCVAE

    module = LitCVAE(1, 8, 8, ["a", "b"], latent_dim=4, free_bits=0.5)
    kl_per_dim = torch.tensor([[0.1, 2.0, 0.0, 0.3], [0.1, 1.0, 0.0, 0.5]])
    # batch means 0.1, 1.5, 0.0, 0.4 -> floored at 0.5 except the 1.5
    assert module.kl_penalty(kl_per_dim).item() == pytest.approx(0.5 + 1.5 + 0.5 + 0.5)
    plain = LitCVAE(1, 8, 8, ["a", "b"], latent_dim=4)
    assert plain.kl_penalty(kl_per_dim).item() == pytest.approx(kl_per_dim.sum(1).mean().item())


@pytest.mark.parametrize(("size", "first", "bottleneck"), [(8, 32, 64), (16, 16, 64), (28, 16, 64), (64, 4, 64)])
def test_larger_images_start_narrower_and_keep_the_bottleneck(size: int, first: int, bottleneck: int) -> None:
    """Each stride-2 stage costs about the same at every size: a 28x28 VAE is not ~4x the work of
    the same shape with `hidden` channels at full resolution."""
    convs = [m for m in CVAE(1, size, size, num_classes=3, hidden=32).encoder.features if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == first and convs[-1].out_channels == bottleneck


@pytest.mark.parametrize("size", [28, 32, 64])
def test_classifier_sees_large_images_at_most_16_pixels_wide(size: int) -> None:
    """A large image and its 2x2 averages give the same logits: nothing is learnt above 16 px,
    so the first conv and its pooling do not run at full resolution."""
    torch.manual_seed(0)
    model = SmallCNN(channels=1, num_classes=4).eval()
    x = torch.rand(3, 1, size, size)
    half = torch.nn.functional.avg_pool2d(x, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(half))
    digits = torch.rand(3, 1, 8, 8)
    with torch.no_grad():  # 8x8 digits pass unchanged: not equal to their own 4x4 averages
        assert not torch.allclose(model(digits), model(torch.nn.functional.avg_pool2d(digits, 2)))


@pytest.mark.parametrize(("size", "at"), [(8, 4), (14, 4), (16, 4), (28, 4), (64, 4), (6, 6)])
def test_the_second_conv_runs_at_4x4_whatever_the_image_size(size: int, at: int) -> None:
    """Its cost no longer grows with the image: at 28x28 it ran at full size, then at 7x7."""
    model = SmallCNN(channels=1, num_classes=3).eval()
    seen: list[tuple[int, ...]] = []
    model.body[2].register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape[-2:])))
    with torch.no_grad():
        model(torch.rand(2, 1, size, size))
    assert seen == [(at, at)]


def test_the_consistency_term_trains_the_decoder_and_never_the_judge() -> None:
    """The judge learns only from real images; the consistency term (prior samples with random
    labels, judged) reaches the decoder alone, so the judge cannot learn to call bad samples good."""
    from pipeline.models.lit_cvae import LitCVAE

    torch.manual_seed(0)
    module = LitCVAE(1, 8, 8, ["a", "b", "c"], latent_dim=4, consistency=1.0)
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    module.consistency_loss(module.judge, x, y).backward()
    assert all(p.grad is None for p in module.judge.parameters())
    assert module.model.decoder.label_embed.weight.grad.abs().sum() > 0
    assert module.model.encoder.to_stats.weight.grad.abs().sum() > 0  # codes of the batch's images are judged too
    module.zero_grad()
    module.objective(x, y, epoch=0)[0].backward()
    assert module.judge.head[-1].weight.grad.abs().sum() > 0  # from the real images' cross-entropy
    assert LitCVAE(1, 8, 8, ["a", "b"]).judge is None  # off by default: a plain VAE as before
    assert module.consistency_loss(module.judge, x[:0], y[:0]).item() == 0  # an M2 batch with no labeled rows
