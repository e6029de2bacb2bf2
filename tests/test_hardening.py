"""Hardening, tried on purpose: interrupted runs, corrupt fit files, failed fits, reproducibility.

Each test breaks something on purpose and checks that pkmodel says what went wrong, exits with the
documented status and leaves files on disk as they were.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import pkmodel
from pkmodel.cli.main import main
from pkmodel.netcdf import checksum as _checksum

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


def _wait_for_sampling(proc: subprocess.Popen) -> None:
    """Read stderr up to the wrapper's marker (pkmodel's progress lines come before it)."""
    for _ in range(20):
        line = proc.stderr.readline().strip()
        if line == "pkmodel-test: sampling":
            return
        assert line.startswith("pkmodel: "), line
    raise AssertionError("the sampler never started")


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
        _wait_for_sampling(proc)
        time.sleep(3.0 if existing else 0.2)  # nutpie is under way (or still compiling)
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


@pytest.mark.slow
def test_killed_during_sampling_leaves_the_previous_file(tmp_path):
    output = tmp_path / "fit.nc"
    output.write_bytes(b"previous")
    proc = _fit_subprocess(tmp_path, output)
    try:
        _wait_for_sampling(proc)
        time.sleep(3.0)
        proc.kill()  # SIGKILL: no handler runs at all
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert output.read_bytes() == b"previous"
    # no partial output; the killed run's lock (its process id) stays, hidden, and is taken
    # over by the next run on that output
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left in (["fit.nc", "run_pkmodel.py"],
                    [".fit.nc.pkmodel-lock", "fit.nc", "run_pkmodel.py"]), left
    from pkmodel.files import output_lock

    with output_lock(output):
        assert (tmp_path / ".fit.nc.pkmodel-lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".fit.nc.pkmodel-lock").exists()


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


def test_interrupt_guard_turns_an_error_caused_by_ctrl_c_into_the_interruption():
    # CI saw a Ctrl-C land inside Numba's compile callback, which swallowed it and then failed
    # with RuntimeError ("no compiled object yet"): the user pressed Ctrl-C, so exit 130.
    from pkmodel.sampling import interrupt_guard

    with pytest.raises(KeyboardInterrupt) as info, interrupt_guard():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass
        raise RuntimeError("no compiled object yet")
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(RuntimeError), interrupt_guard():
        raise RuntimeError("a real failure, no Ctrl-C")


def test_interrupt_guard_keeps_a_ctrl_c_in_a_callback_quiet(monkeypatch):
    # The same Ctrl-C, raised where Python can only report it as "Exception ignored ...
    # Traceback": it is not printed; any other unraisable error still is.
    from pkmodel.sampling import interrupt_guard

    seen = []

    def hook(unraisable):
        seen.append(type(unraisable.exc_value))

    monkeypatch.setattr(sys, "unraisablehook", hook)

    class RaisesOnDelete:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    with pytest.raises(KeyboardInterrupt), interrupt_guard():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass
        RaisesOnDelete(KeyboardInterrupt())
        RaisesOnDelete(ValueError("not the interruption"))
    assert seen == [ValueError]
    assert sys.unraisablehook is hook


def test_truncated_or_nan_trace_is_refused():
    import numpy as np
    import xarray as xr

    from pkmodel.errors import SamplingError
    from pkmodel.sampling import check_complete

    def tree(values):
        post = xr.Dataset({"beta": (("chain", "draw"), values)})
        return xr.DataTree.from_dict({"/posterior": post})

    check_complete(tree(np.ones((2, 50))), draws=50, chains=2)
    with pytest.raises(SamplingError, match="2 chains x 30 draws of the 2 x 50"):
        check_complete(tree(np.ones((2, 30))), draws=50, chains=2)
    zeroed = np.ones((2, 50))
    zeroed[0, 7] = 0.0  # how nutpie stores a draw whose values it could not compute
    with pytest.raises(SamplingError, match="all zero"):
        check_complete(tree(zeroed), draws=50, chains=2)
    partial = np.ones((2, 50))
    partial[1, 10:] = np.nan
    with pytest.raises(SamplingError, match="40 non-finite draws of 'beta'"):
        check_complete(tree(partial), draws=50, chains=2)


# --------------------------------------------------------------------------- a saved fit to break
@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory):
    """A small real fit written by `pkmodel fit --json` as ``fit.nc``, and its JSON output."""
    folder = tmp_path_factory.mktemp("saved")
    here = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["fit", "-o", "fit.nc", "--json", "--cores", "2", *FAST])
    finally:
        os.chdir(here)
    assert code == 0
    return folder / "fit.nc", out.getvalue()


def test_interrupted_fit_save_leaves_the_previous_file(saved_fit, tmp_path, monkeypatch):
    import xarray as xr

    fit = pkmodel.load_fit(saved_fit[0], warn=False)
    target = tmp_path / "fit.nc"
    target.write_bytes(b"previous")
    original = xr.DataTree.to_netcdf

    def write_half_then_interrupt(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        Path(path).write_bytes(Path(path).read_bytes()[:1000])  # a partial file on disk
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", write_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit.save(target, force=True)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_interrupted_plot_write_exits_130_and_keeps_the_old_plot(saved_fit, tmp_path, capsys,
                                                                  monkeypatch):
    from matplotlib.figure import Figure

    plot = tmp_path / "curve.png"
    plot.write_bytes(b"old plot")

    def savefig_then_interrupt(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"half a png")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", savefig_then_interrupt)
    code, out, err = run(capsys, "curve", str(saved_fit[0]), "--plot", str(plot), "--force",
                         "--month", "6")
    assert code == 130 and out == "" and "interrupted" in err and "Traceback" not in err
    assert plot.read_bytes() == b"old plot"
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]


# --------------------------------------------------------------------------- loading
def _rewrite(source: Path, target: Path, change) -> Path:
    import xarray as xr

    with xr.open_datatree(source, engine="h5netcdf") as opened:
        tree = opened.load()
    change(tree)
    if "pkmodel_checksum" in tree.attrs:  # internally consistent, as another version would write
        tree.attrs["pkmodel_checksum"] = _checksum(tree)
    tree.to_netcdf(target, engine="h5netcdf")
    return target


def _spec_with(**fields):
    def change(tree):
        tree.attrs["pkmodel_spec"] = json.dumps({**json.loads(tree.attrs["pkmodel_spec"]),
                                                 **fields})
    return change


def _drop_posterior_variable(tree):
    import xarray as xr

    tree["posterior"] = xr.DataTree(tree["posterior"].to_dataset().drop_vars("beta"))


BROKEN = {
    "spec-unknown-field": (_spec_with(link="probit"), "unknown specification fields"),
    "spec-invalid-value": (_spec_with(slope_by="centre"), "slope_by must be"),
    "spec-unknown-prior": (_spec_with(priors={"beta_sd": 1.0}), "unknown prior"),
    "spec-not-json": (lambda t: t.attrs.update(pkmodel_spec="{oops"), "specification"),
    "design-key-missing": (
        lambda t: t.attrs.update(pkmodel_design=json.dumps(
            {k: v for k, v in json.loads(t.attrs["pkmodel_design"]).items()
             if k != "strategies"})), "design lacks strategies"),
    "newer-format": (lambda t: t.attrs.update(pkmodel_format=99), "newer pkmodel"),
    "format-garbage": (lambda t: t.attrs.update(pkmodel_format="one"), "unknown fit format"),
    "seed-garbage": (lambda t: t.attrs.update(pkmodel_random_seed="x"), "cannot be read"),
    "hash-missing": (lambda t: t.attrs.pop("pkmodel_data_hash"), "pkmodel_data_hash"),
    "posterior-variable-missing": (_drop_posterior_variable, "does not match the specification"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_incompatible_fit_files_give_one_clear_error(saved_fit, tmp_path, capsys, case):
    change, message = BROKEN[case]
    path = _rewrite(saved_fit[0], tmp_path / "fit.nc", change)
    with pytest.raises(pkmodel.FitFileError, match=message):
        pkmodel.load_fit(path)
    code, out, err = run(capsys, "threshold", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"pkmodel: error: {path}") and err.count("\n") == 1


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.98])
def test_truncated_fit_file(saved_fit, tmp_path, capsys, keep):
    data = saved_fit[0].read_bytes()
    path = tmp_path / "fit.nc"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(pkmodel.FitFileError, match="truncated, corrupt or of another format"):
        pkmodel.load_fit(path)
    code, out, err = run(capsys, "curve", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err


def test_flipped_bytes_never_load_as_a_different_fit(saved_fit, tmp_path):
    """netCDF has no checksum: pkmodel writes one, so a damaged data block is refused."""
    import random

    import numpy as np

    data = saved_fit[0].read_bytes()
    good = pkmodel.load_fit(saved_fit[0], warn=False)
    beta = good.posterior["beta"].values.tobytes()[:16]
    assert data.count(beta) == 1
    rng = random.Random(8)
    positions = [data.index(beta) + 3] + [rng.randrange(len(data)) for _ in range(12)]
    outcomes = []
    for pos in positions:
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        path = tmp_path / "damaged.nc"
        path.write_bytes(bytes(damaged))
        try:
            fit = pkmodel.load_fit(path, warn=False)
        except pkmodel.FitFileError as exc:
            outcomes.append("corrupt" if "checksum" in str(exc) else "refused")
            continue
        for name in good.posterior.data_vars:  # a flip in unused bytes: the very same fit
            np.testing.assert_array_equal(fit.posterior[name].values,
                                          good.posterior[name].values)
        outcomes.append("unchanged")
    assert outcomes[0] == "corrupt"  # a flipped byte inside the posterior draws of beta


def test_a_netcdf_that_is_not_a_fit(tmp_path, capsys):
    import numpy as np
    import xarray as xr

    path = tmp_path / "plain.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(pkmodel.FitFileError, match="not a fit saved by pkmodel"):
        pkmodel.load_fit(path)
    code, out, err = run(capsys, "threshold", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1


# Loading a fit must never unpickle bytes that came from outside the process. Dask (used by
# xarray) round-trips in-memory objects through pickle to tokenize them: that is allowed, as the
# bytes were made by pickle.dumps in this very process; anything else trips the wire.
_NO_PICKLE = textwrap.dedent("""
    import sys, pickle, _pickle
    calls, made = [], set()
    _dumps, _loads = pickle.dumps, pickle.loads

    def dumps(*args, **kwargs):
        out = _dumps(*args, **kwargs)
        made.add(bytes(out))
        return out

    def loads(data, *args, **kwargs):
        if bytes(data) in made:
            return _loads(data, *args, **kwargs)
        calls.append("loads")
        raise RuntimeError("pickle.loads of foreign bytes while loading a fit")

    def refuse(*args, **kwargs):
        calls.append("load/Unpickler")
        raise RuntimeError("unpickling from a file while loading a fit")

    for module in (pickle, _pickle):
        module.dumps, module.loads, module.load, module.Unpickler = dumps, loads, refuse, refuse
    import pkmodel
    for extra in ("cloudpickle", "dill"):
        if extra in sys.modules:
            module = sys.modules[extra]
            module.dumps, module.loads, module.load = dumps, loads, refuse
    fit = pkmodel.load_fit(sys.argv[1], warn=False)
    fit.futility_threshold()
    try:
        pkmodel.load_fit(sys.argv[2])
    except pkmodel.FitFileError:
        pass
    print("unpickling calls:", calls)
""")


def test_loading_never_unpickles(saved_fit, tmp_path):
    """Pickle bytes in a fit file stay inert bytes; no unpickler runs while loading and using it."""
    import pickle

    import numpy as np

    class Payload:
        def __reduce__(self):
            return (Path(tmp_path / "pwned").touch, ())

    evil = pickle.dumps(Payload())
    assert (tmp_path / "pwned").exists() is False

    def plant(tree):
        tree.attrs["pkmodel_spec"] = np.frombuffer(evil, dtype=np.uint8)

    bad = _rewrite(saved_fit[0], tmp_path / "evil.nc", plant)
    script = tmp_path / "load.py"
    script.write_text(_NO_PICKLE)
    done = subprocess.run([sys.executable, str(script), str(saved_fit[0]), str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "unpickling calls: []" in done.stdout
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- failed fits
def _separated_cohort_csv(path: Path, *, reverse: bool = False, tie: bool = False) -> Path:
    """Every low-TL patient remits and every high-TL patient does not (or the reverse)."""
    rows = ["patient_id,center,month,remission,baseline_tl,ati,strategy"]
    tls = [3.5 + 0.5 * i for i in range(20)] + [14.0 + 0.5 * i for i in range(20)]
    if tie:
        tls[19] = tls[20]  # one remitter and one non-remitter share the boundary TL
    for i, tl in enumerate(tls):
        low = i < 20
        for month in (6, 12):
            remits = int(low != reverse)
            strategy = ("dose_escalation", "interval_shortening")[i % 2]
            rows.append(f"P{i},{'ab'[i % 2]},{month},{remits},{tl},0,{strategy}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_separation_is_detected_per_month_and_direction(tmp_path, tidy_frame):
    from pkmodel.data import read_cohort, tl_separation

    found = tl_separation(read_cohort(_separated_cohort_csv(tmp_path / "a.csv")))
    assert [(s.month, s.kind, s.remitters_lower) for s in found] == [
        (6, "complete", True), (12, "complete", True)]
    assert "every patient with TL <= 13 µg/mL remits" in str(found[0])
    found = tl_separation(read_cohort(_separated_cohort_csv(tmp_path / "b.csv", reverse=True)))
    assert {s.remitters_lower for s in found} == {False}
    found = tl_separation(read_cohort(_separated_cohort_csv(tmp_path / "c.csv", tie=True)))
    assert {s.kind for s in found} == {"quasi-complete"}
    assert tl_separation(pkmodel.load_ungar2019()) == []
    # tidy_frame: remitters at TL 4.1 and 5.0 (month 6) and 4.1 (month 12); the others at 5.0
    # (month 12), 9.5 and '>16': both months are separated.
    months = {s.month for s in tl_separation(read_cohort(tidy_frame))}
    assert months == {6, 12}
    # A censored '>16' remitter: its TL is at least 16, so it cannot separate below 9.5.
    mixed = tidy_frame.copy()
    mixed.loc[(mixed.patient_id == "P3"), "remission"] = "1"
    assert tl_separation(read_cohort(mixed)) == []


def _constant_month_csv(path: Path, *, everyone: bool = False) -> Path:
    """Every patient remits at month 6; at month 12 a third do not (or, everyone: none fails)."""
    rows = ["patient_id,center,month,remission,baseline_tl,ati,strategy"]
    for i in range(30):
        strategy = ("dose_escalation", "interval_shortening")[i % 2]
        for month in (6, 12):
            remits = 1 if (month == 6 or everyone) else int(i % 3 != 0)
            rows.append(f"P{i},{'ab'[i % 2]},{month},{remits},{3.5 + 0.5 * i},0,{strategy}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_no_outcome_variation_is_said_plainly_by_classical_and_by_the_fit(tmp_path, capsys,
                                                                         monkeypatch):
    from pkmodel.data import constant_outcomes, read_cohort
    from pkmodel.response.spec import RemissionModel

    month6 = read_cohort(_constant_month_csv(tmp_path / "m6.csv"))
    overall = read_cohort(_constant_month_csv(tmp_path / "all.csv", everyone=True))
    assert [(c.month, c.remission, c.n_assessments) for c in constant_outcomes(month6)] == [
        (6, 1, 30)]
    assert [(c.month, c.n_assessments) for c in constant_outcomes(overall)] == [(None, 60)]
    assert constant_outcomes(pkmodel.load_ungar2019()) == []

    result = pkmodel.classical_analysis(month6)
    assert list(result.not_computed) == [6]
    text = str(result)
    assert "month 6: cannot be computed: all 30 assessed patients remitted" in text
    assert "there are no non-remitters" in text and "nan" not in text
    assert "month 12: remission n=20" in text  # the month with both outcomes is computed
    assert result.to_dict()["classical_not_computed"]["6"].startswith("all 30 assessed")
    code, out, err = run(capsys, "classical", str(tmp_path / "all.csv"))
    assert code == 0 and err == "" and "nan" not in out
    assert out.count("cannot be computed: all 30 assessed patients remitted") == 2
    code, out, _ = run(capsys, "classical", str(tmp_path / "all.csv"), "--json")
    assert set(json.loads(out)["classical_not_computed"]) == {"6", "12"}

    # the fit warns before it samples (the sampling itself is stopped here)
    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(RemissionModel, "_design", stop)
    for cohort, words in ((month6, "at month 6, every one of the 30 assessments is a remission"),
                          (overall, "the TL slope (priors.slope_sd) are identified only")):
        with pytest.warns(pkmodel.ConstantOutcomeWarning, match="identified only by") as record, \
                pytest.raises(Stop):
            RemissionModel().fit(cohort)
        assert words in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pkmodel.ConstantOutcomeWarning)
        with pytest.raises(Stop):
            RemissionModel().fit(pkmodel.load_ungar2019())


@pytest.mark.slow
def test_a_month_without_variation_still_fits_and_strict_refuses_it(tmp_path, capsys):
    cohort = _constant_month_csv(tmp_path / "constant.csv")
    code, out, err = run(capsys, "fit", str(cohort), "-o", str(tmp_path / "fit.nc"), *FAST)
    assert code == 0 and "wrote" in out, err
    assert ("pkmodel: warning: remission does not vary at some months (at month 6, every one of "
            "the 30 assessments is a remission)") in err
    code, _, err = run(capsys, "fit", str(cohort), "-o", str(tmp_path / "fit.nc"), "--force",
                       "--strict", *FAST)
    assert code == 3 and "strict: remission does not vary at some month" in err


@pytest.mark.slow
def test_separated_data_still_fit_under_the_priors_and_say_so(tmp_path, capsys):
    cohort = _separated_cohort_csv(tmp_path / "separated.csv")
    code, out, err = run(capsys, "fit", str(cohort), "-o", str(tmp_path / "fit.nc"), "--json",
                         *FAST)
    assert code == 0, err
    assert json.loads(out)["diagnostics"]["n_draws"] == 200
    assert "pkmodel: warning: remission is separated by baseline TL" in err
    assert "set by the slope prior (priors.slope_sd)" in err
    fit = pkmodel.load_fit(tmp_path / "fit.nc", warn=False)
    code, _, err = run(capsys, "fit", str(cohort), "-o", str(tmp_path / "fit.nc"), "--force",
                       "--strict", *FAST)
    assert code == 3 and "strict: remission is separated by TL" in err
    beta = fit.posterior["beta"].values
    assert beta.size == 200 and (beta == beta).all()  # finite: the prior bounds the slope
    assert beta.mean() < 0 and beta.std() > 0.2  # steep and uncertain, not a point mass


# --------------------------------------------------------------------------- reproducibility
@pytest.mark.slow
def test_same_seed_gives_byte_identical_json_across_runs_and_cores(saved_fit, tmp_path):
    """`pkmodel fit --json` twice more, in fresh processes with other hash seeds, with the chains in
    sequence (--cores 1) and in parallel (--cores 2): the same bytes as the first run."""
    first = saved_fit[1]
    procs = []
    for cores, hash_seed in (("1", "1"), ("2", "2")):
        folder = tmp_path / f"cores{cores}"
        folder.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        argv = [sys.executable, "-m", "pkmodel.cli.main", "fit", "-o", "fit.nc", "--json",
                "--cores", cores, *FAST]
        procs.append(subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    sequential, parallel = (out for out, _ in outputs)
    assert json.loads(first)["random_seed"] == 7
    assert sequential == first
    assert parallel == first


def test_sampler_that_cannot_start_is_a_sampling_error():
    """No finite starting point: a SamplingError that says what failed, not nutpie's panic.

    Run in a child process: after such a failure nutpie 0.16 crashes the interpreter when it
    exits (it does so without pkmodel too), so only the message is checked here.
    """
    code = """
import dataclasses, sys, warnings
import numpy as np
import pkmodel
from pkmodel import model_cache
from pkmodel.response import compiled
from pkmodel.response.simulation import simulate_cohort
warnings.simplefilter("ignore")
spec, cohort = pkmodel.RemissionModel(), simulate_cohort(30, 2, random_seed=4)
design, options = spec._design(cohort)
model = compiled.sampler_model(design, spec.priors, **options)
model_cache._MEMO[model.key] = dataclasses.replace(model, x0=np.full(model.n_dim, np.nan))
try:
    spec.fit(cohort, draws=20, tune=20, chains=1, progressbar=False)
except pkmodel.SamplingError as err:
    print("SamplingError:", err, flush=True)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert "SamplingError: the sampler failed (All initialization points failed" in out.stdout
    assert "nothing was saved" in out.stdout


def test_a_cohort_of_one_patient_is_refused_with_one_message(tmp_path, capsys):
    one = pkmodel.load_ungar2019().data
    one = one[one.patient_id == one.patient_id.iloc[0]]
    path = tmp_path / "one.csv"
    one.to_csv(path, index=False)
    code = main(["fit", str(path), "-o", str(tmp_path / "f.nc")])
    _, err = capsys.readouterr()
    assert code == 2 and "1 patient(s)" in err and "at least 2" in err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert not (tmp_path / "f.nc").exists()


def test_ctrl_c_during_a_nuts_forecast_exits_130_without_a_traceback():
    exe = Path(sys.executable).with_name("pkmodel")
    proc = subprocess.Popen([str(exe), "pk", "forecast", "--id", "103", "--method", "nuts",
                             "--draws", "20000", "--tune", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # interrupt once it says it is sampling (not while Python loads its libraries, whose
    # finalizers may swallow the interrupt: on a busy machine that takes more than 8 s)
    seen = []
    while not any("sampling the posterior" in line for line in seen):
        line = proc.stderr.readline()
        assert line, "".join(seen)  # it ended before sampling
        seen.append(line)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and out == ""
