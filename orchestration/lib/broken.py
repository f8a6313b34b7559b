"""The asset of a declaration that cannot run (a sync or a campaign with a mistake).

It is defined like the others, so the UI shows it where the user expects it, but its
materialization fails with the declaration's error: the run that includes it fails, the
run-failure sensor records the alert naming it, and loading the definitions never raises,
so every other asset, schedule and sensor keeps working.
"""

from __future__ import annotations

import dagster as dg


def broken_asset(key: dg.AssetKey, *, error: str, deps: list[dg.AssetKey], group_name: str,
                 kinds: set[str] | None = None) -> dg.AssetsDefinition:
    """An asset whose every materialization fails with `error` (fix the declaration, then reload)."""

    @dg.asset(key=key, deps=deps, group_name=group_name, kinds=kinds or None,
              description=f"Cannot run: {error}", metadata={"declaration_error": error},
              tags={"attiva/broken": "true"})
    def _broken() -> None:
        raise dg.Failure(description=f"{key.to_user_string()} cannot run: {error} "
                                     "(fix it, then reload the code location)", allow_retries=False)

    return _broken
