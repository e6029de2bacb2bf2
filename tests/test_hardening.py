"""Hardening, tried on purpose: interrupted runs, corrupt fit files, failed fits, reproducibility.

Design section 5 and issue 8. Each test breaks something on purpose and checks that pkmodel says
what went wrong, exits with the documented status and leaves files on disk as they were.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pkmodel.cli.main import main

FAST = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "7"]

# Runs `pkmodel fit` as the command line does, with markers on stderr around the sampler call, so
# the test can interrupt during sampling (after nutpie's compile) and see whether the sampler
# returned a partial trace (nutpie and PyMC catch Ctrl-C and return what they have).
_WRAPPER = textwrap.dedent("""
    import sys
    try:
        import nutpie as _sampler
    except ImportError:
        import pymc as _sampler
    _sample = _sampler.sample

    def sample(*args, **kwargs):
        print("pkmodel-test: sampling", file=sys.stderr, flush=True)
        out = _sample(*args, **kwargs)
        print("pkmodel-test: sampler returned", file=sys.stderr, flush=True)
        return out

    _sampler.sample = sample
    from pkmodel.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _fit_subprocess(tmp_path: Path, output: Path) -> subprocess.Popen:
    script = tmp_path / "run_pkmodel.py"
    script.write_text(_WRAPPER)
    argv = [sys.executable, str(script), "fit", "-o", str(output), "--force", "--seed", "1",
            "--draws", "200000", "--tune", "100", "--chains", "2"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("existing", [True, False], ids=["existing-output", "no-output"])
def test_sigint_during_sampling_exits_130_and_writes_nothing(tmp_path, existing):
    output = tmp_path / "fit.nc"
    previous = b"a previous fit, which must survive\x00\x01" * 10
    if existing:
        output.write_bytes(previous)
    proc = _fit_subprocess(tmp_path, output)
    try:
        assert proc.stderr.readline().strip() == "pkmodel-test: sampling"
        time.sleep(1.0 if existing else 0.2)  # nutpie is under way (or still compiling)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert out == ""
    assert "interrupted; no output was written" in err and "Traceback" not in err
    if existing:
        # The sampler swallowed Ctrl-C and returned a partial trace; pkmodel refused to save it.
        assert "sampler returned" in err
        assert output.read_bytes() == previous
    else:
        assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run_pkmodel.py"] + (["fit.nc"] if existing else []))


def test_interrupt_guard_reraises_a_swallowed_ctrl_c():
    from pkmodel.sampling import interrupt_guard

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), interrupt_guard() as state:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass  # what nutpie and PyMC do
    assert state.interrupted and signal.getsignal(signal.SIGINT) is before
    with interrupt_guard() as state:
        pass
    assert not state.interrupted


def test_truncated_or_nan_trace_is_refused():
    import numpy as np
    import xarray as xr

    from pkmodel.errors import SamplingError
    from pkmodel.sampling import check_complete

    def tree(values):
        post = xr.Dataset({"beta": (("chain", "draw"), values)})
        return xr.DataTree.from_dict({"/posterior": post})

    check_complete(tree(np.zeros((2, 50))), draws=50, chains=2)
    with pytest.raises(SamplingError, match="2 chains x 30 draws of the 2 x 50"):
        check_complete(tree(np.zeros((2, 30))), draws=50, chains=2)
    partial = np.zeros((2, 50))
    partial[1, 10:] = np.nan
    with pytest.raises(SamplingError, match="40 non-finite draws of 'beta'"):
        check_complete(tree(partial), draws=50, chains=2)
