"""The activation engine's warehouse on Spark: a SparkSession behind the calls the engine makes.

The engine talks to its warehouse through a handful of calls (`execute`, `sql(...).to_arrow_reader`,
`register`) plus the writes in `engine/dialect.py` (delete, update, transaction). DuckDB answers
them natively; this class answers them on Spark, so plan, commit, rejects and the run log are the
same code on both.

Spark's plain Parquet tables cannot delete or update rows and have no transactions. A delete or
an update here computes the table's new content with a query, writes it to a new folder beside the
table's current one (wherever that is: local disk, HDFS, S3) and points the table at it with one
metastore change (`alter table ... set location`), so a reader sees the old table or the new one,
never half of each. What the engine does across several tables (folding a run into the snapshot)
is ordered so that repeating it after a crash gives the same result (see `engine/ledger.py`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

VERSION = re.compile(r"__v[0-9a-f]{12}$")  # the suffix of a table's folder after a rewrite


def naive_utc(table: pa.Table) -> pa.Table:
    """Spark's timestamps arrive as UTC instants; the engine keeps UTC in plain timestamps, as DuckDB does."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) else f
              for f in table.schema]
    return table.cast(pa.schema(fields))


class SparkResult:
    """A query's rows, fetched the way DuckDB's cursor hands them out."""

    def __init__(self, frame) -> None:
        self.frame = frame
        self._rows: list[tuple] | None = None

    def _all(self) -> list[tuple]:
        if self._rows is None:
            table = naive_utc(self.frame.toArrow())
            columns = [column.to_pylist() for column in table.columns]
            self._rows = list(zip(*columns, strict=True)) if columns else []
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self._all()
        return rows[0] if rows else None

    def fetchall(self) -> list[tuple]:
        return self._all()

    def to_arrow_reader(self, rows_per_batch: int) -> pa.RecordBatchReader:
        table = naive_utc(self.frame.toArrow())
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=rows_per_batch))


class SparkWarehouse:
    """The engine's warehouse connection on a SparkSession (see the module's docstring)."""

    warehouse_kind = "spark"

    def __init__(self, spark) -> None:
        self.spark = spark

    # -- what DuckDB's connection offers -----------------------------------------------------------

    def execute(self, query: str, params: Sequence[Any] | None = None) -> SparkResult:
        """Run one statement; `?` markers take `params` in order (Spark binds them, nothing is pasted)."""
        return SparkResult(self.spark.sql(query, args=list(params)) if params else self.spark.sql(query))

    def sql(self, query: str, params: Sequence[Any] | None = None) -> SparkResult:
        return self.execute(query, params)

    def cursor(self) -> SparkWarehouse:
        return self  # one session serves every reader and writer of the process

    def register(self, name: str, table: pa.Table) -> None:
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        """The session belongs to whoever opened it (activations.spark.session)."""

    # -- the writes Spark's Parquet tables cannot do in place --------------------------------------

    def has_table(self, schema: str, table: str) -> bool:
        return bool(self.spark.catalog.tableExists(f"{schema}.{table}"))

    def table_columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """(name, type) in the table's order."""
        return [(c.name, c.dataType) for c in self.spark.catalog.listColumns(f"{schema}.{table}")]

    def create_table(self, name: str, columns: str) -> None:
        self.spark.sql(f"create table if not exists {name} ({columns}) using parquet")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """No transactions on Parquet: the engine's multi-table steps are safe to repeat instead."""
        yield

    def delete_where(self, table: str, where: str, params: Sequence[Any] = ()) -> None:
        """`delete from table where ...`: the rows the condition does not hold for (false or null) stay."""
        if not self._matches(table, where, params):
            return
        kept = self.spark.sql(f"select * from {table} except all select * from {table} where {where}",
                              args=list(params))
        self._replace(table, kept)

    def update_where(self, table: str, values: dict[str, Any], where: str, params: Sequence[Any] = ()) -> None:
        """`update table set column = value, ... where ...` with bound values."""
        if not self._matches(table, where, params):
            return
        schema, name = table.split(".")
        columns = self.table_columns(schema, name)
        unknown = set(values) - {c for c, _ in columns}
        if unknown:
            raise ValueError(f"{table} has no column {', '.join(sorted(unknown))}")
        projection = ", ".join(f"cast(? as {kind}) as {c}" if c in values else c for c, kind in columns)
        changed = [values[c] for c, _ in columns if c in values]
        query = (f"select {projection} from {table} where {where} "
                 f"union all (select * from {table} except all select * from {table} where {where})")
        self._replace(table, self.spark.sql(query, args=[*changed, *params, *params]))

    def _matches(self, table: str, where: str, params: Sequence[Any]) -> bool:
        found = self.spark.sql(f"select 1 from {table} where {where} limit 1", args=list(params)).collect()
        return bool(found)

    def _replace(self, table: str, content) -> None:
        """Write `content` to a new folder beside the table's and switch the table to it in one step."""
        content = content.localCheckpoint(eager=True)  # computed before the table it reads is switched
        current = self._location(table)
        fresh = f"{VERSION.sub('', current)}__v{uuid.uuid4().hex[:12]}"
        content.write.mode("errorifexists").parquet(fresh)
        self.spark.sql(f"alter table {table} set location '{fresh}'")
        self.spark.catalog.refreshTable(table)
        self._remove_folder(current)

    def _location(self, table: str) -> str:
        rows = self.spark.sql(f"describe table extended {table}").collect()
        return next(row[1] for row in rows if row[0] == "Location")

    def _remove_folder(self, location: str) -> None:
        """The table's previous folder, through Hadoop's file system API (any scheme Spark reads)."""
        jvm = self.spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(location)
        path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)
