"""The project's code location as the production suite's daemon loads it: orchestration.definitions
with its sensors, jobs and assets as they are, minus its two schedules, whose runs (the daily full
refresh, due messages every 5 minutes) need a built warehouse and would fire at whatever time the
test happens to run. The probe location (probe_location.py) stands in for them."""

import dagster as dg

from orchestration.definitions import defs as project

defs = dg.Definitions(assets=project.assets, asset_checks=project.asset_checks, jobs=project.jobs,
                      sensors=project.sensors, resources=project.resources, executor=project.executor)
