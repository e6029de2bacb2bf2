"""LOO comparison of competing specifications fitted on the same data."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from pkmodel.errors import PredictionError

__all__ = ["compare"]


def compare(fits: dict) -> pd.DataFrame:
    """Compare fits by PSIS-LOO expected log predictive density of the remission outcomes.

    Parameters
    ----------
    fits : dict of str to RemissionFit
        Named fits of the same cohort (checked through the data hash).

    Returns
    -------
    pandas.DataFrame
        ArviZ's comparison table (``elpd``, ``p``, ``elpd_diff``, ``weight``, ``se``, ``dse``,
        ``warning``...), best first. This is leave-one-patient-out: all of a patient's
        assessments are left out together. With a patient effect (integrated out) the
        log-likelihood is per patient already; without one the per-assessment values are summed
        per patient, so that fits with and without the patient effect are compared on the same
        units.
    """
    if not isinstance(fits, dict) or len(fits) < 2:
        raise PredictionError("compare needs a dict of at least two named fits")
    hashes = {name: f.data_hash for name, f in fits.items()}
    if len(set(hashes.values())) > 1:
        raise PredictionError(f"the fits were made on different data ({hashes}); LOO comparison "
                              "needs the same cohort")
    trees = {}
    for name, f in fits.items():
        if "log_likelihood" not in f.tree.children:
            raise PredictionError(f"fit {name!r} has no log-likelihood group")
        ll = f.tree["log_likelihood"].to_dataset()["remission"]
        if "obs" in ll.dims:
            patient = xr.DataArray(f.cohort_data["patient_id"].astype(str).to_numpy(),
                                   dims="obs")
            ll = ll.assign_coords(patient=patient).groupby("patient").sum()
        trees[name] = f.tree.copy()
        trees[name]["log_likelihood"] = ll.to_dataset(name="remission")
    import arviz as az

    return az.compare(trees, round_to="none")
