"""The research-software disclaimer, in one wording for every output that carries one."""

from __future__ import annotations

__all__ = ["DISCLAIMER"]

#: Printed by the command line and written into its JSON, the HTML report, scenario datasets and
#: PK forecasts.
DISCLAIMER = ("pkmodel is research software: it supports research on pharmacokinetics and "
              "therapeutic drug monitoring, is not a medical device, and is not a basis for "
              "bedside decisions.")
