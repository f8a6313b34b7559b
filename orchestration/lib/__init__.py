"""Building blocks of the definitions that hold no Dagster definitions themselves."""
