"""Which CPU kernels torch may use: the same bits on any x86-64 CPU, or the fastest for this one.

torch picks kernels per processor in four places, and each one changed our outputs' last bits
(docs/reproducibility.md): ATen's own vectorised kernels (`ATEN_CPU_CAPABILITY`), MKL's matrix
products (`MKL_CBWR`, conditional numerical reproducibility), and the convolutions of oneDNN and
of NNPACK, which choose their loop blocking from the CPU's cache sizes: two AVX2 machines with
other caches summed in another order (issue #38), whatever instruction set was pinned.
`portable` (the default of `trainer.cpu_kernels`) fixes the first two to their AVX2 code paths,
which every x86-64 CPU with AVX2 (Intel since 2013, AMD since 2015) runs alike, and switches
oneDNN and NNPACK off: convolutions then run ATen's im2col loops around MKL's matrix products
(`models/conv.py` keeps them near oneDNN's speed). `native` leaves torch free to use AVX-512, AMX
and oneDNN when bits across machines do not matter.

The environment variables are read when torch first computes, so the pin must happen before
that in every process. `pin()` runs when the `pipeline` package is imported (before any stage or
worker touches torch) and leaves the variables in `os.environ`, so spawned worker processes
inherit them (and pin again on their own import, which switches their oneDNN off); a worker on
another machine gets them from `inherited_env()`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

Mode = Literal["portable", "native"]
MODES: tuple[Mode, ...] = ("portable", "native")
DEFAULT_MODE: Mode = "portable"
MODE_VAR = "PIPELINE_CPU_KERNELS"  # the mode this process pinned, read by processes it starts


def _cpu_has_avx2() -> bool:
    """Whether this CPU runs AVX2 (Linux's /proc/cpuinfo; elsewhere assumed not known)."""
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's AVX2 kernels, not AVX-512 ones (plain C++ cost 65 % more)
    "MKL_CBWR": "AVX2",  # MKL's AVX2 branch on every CPU that has it, not the CPU's best
}
if _cpu_has_avx2():  # OpenBLAS on a CPU without AVX2 would die of an illegal instruction instead
    PORTABLE_ENV.update({
        # numpy's and scipy's OpenBLAS (quality metrics, logreg): the Haswell kernels, whose blocking
        # is fixed at build time, not the CPU's best (SkylakeX, Zen, ...)
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_NUM_THREADS": "1",  # its default is one thread per core: other machines, other sums
    })


def pin(mode: str | None = None) -> Mode:
    """Put `mode`'s kernel choice into the environment, before torch computes anything.

    Without an explicit mode: `trainer.cpu_kernels` of the params file on the command line
    (`--params`, else `params.yaml` here), else the mode a parent process pinned, else portable."""
    chosen = mode or _mode_from_params(_params_path(sys.argv)) or os.environ.get(MODE_VAR) or DEFAULT_MODE
    if chosen not in MODES:
        chosen = DEFAULT_MODE  # a bad value is reported by the params' own validation
    if chosen == "portable":
        os.environ.update(PORTABLE_ENV)
    elif os.environ.get(MODE_VAR) == "portable":
        # Inherited from a portable parent: undo its pin, keep anything the user set otherwise.
        for key, value in PORTABLE_ENV.items():
            if os.environ.get(key) == value:
                del os.environ[key]
    os.environ[MODE_VAR] = chosen
    _switch_cache_blocked_libraries(on=chosen == "native")
    return chosen  # type: ignore[return-value]


def _switch_cache_blocked_libraries(on: bool) -> None:
    """oneDNN and NNPACK on (native) or off (portable) in this process: torch's switches are per
    process and may change at any time before a convolution runs. A portable process imports
    torch here (its variables above are set by now); a native one only resets a torch it has."""
    if on and "torch" not in sys.modules:
        return  # a fresh torch has both on
    import torch

    torch.backends.mkldnn.enabled = on
    torch.backends.nnpack.set_flags(on)


def inherited_env() -> dict[str, str]:
    """The variables a worker process elsewhere (a Ray node) needs to compute as this one does."""
    return {key: os.environ[key] for key in (MODE_VAR, *PORTABLE_ENV) if key in os.environ}


def check(mode: str) -> None:
    """Make sure this process computes with `mode`'s kernels, pinning now if torch has not
    computed yet; raises ValueError (the caller names the param) if it is too late."""
    if os.environ.get(MODE_VAR) != mode:
        pin(mode)
    if mode == "portable" and "torch" in sys.modules:
        torch = sys.modules["torch"]
        has_avx2 = getattr(torch.cpu, "_is_avx2_supported", lambda: True)()
        capability = torch.backends.cpu.get_cpu_capability()
        if capability != ("AVX2" if has_avx2 else "DEFAULT"):
            raise ValueError(
                f"torch already runs its {capability} kernels in this process; "
                "import pipeline before torch computes anything, or use native"
            )
        if not has_avx2:
            print("warning: this CPU has no AVX2: torch, MKL and oneDNN fall back to older code paths, so "
                  "outputs can differ in their last bits from those of AVX2 machines", file=sys.stderr)


def _params_path(argv: list[str]) -> Path:
    for i, arg in enumerate(argv):
        if arg == "--params" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--params="):
            return Path(arg.split("=", 1)[1])
    return Path("params.yaml")


def _mode_from_params(path: Path) -> str | None:
    """`trainer.cpu_kernels` from a params file; None when the file or key is absent or unreadable
    (load_params reports a broken file properly later)."""
    try:
        import yaml

        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        value = raw["trainer"]["cpu_kernels"]
    except Exception:  # noqa: BLE001 - any unreadable file means "not said here"
        return None
    return value if isinstance(value, str) else None
