"""Read opt-backfill Parquet with the readers quant engineers use: pyarrow, DuckDB, polars.

Usage: lake_readers.py SPEC_JSON, where SPEC is {"file": PATH, "column": NAME, "value": TEXT}.
Prints one JSON line: per reader the column types, the row count, and the row count of a filter
`column = value` (pyarrow's `filters=` argument, a DuckDB WHERE, a polars filter). A reader that
fails reports its error instead, so the Rust test shows what broke.
"""

import json
import sys


def with_pyarrow(spec):
    import pyarrow.parquet as pq

    table = pq.read_table(spec["file"])
    filtered = pq.read_table(spec["file"], filters=[(spec["column"], "=", spec["value"])])
    return {
        "types": {f.name: str(f.type) for f in table.schema},
        "rows": table.num_rows,
        "filtered": filtered.num_rows,
        "metadata_keys": sorted(k.decode() for k in (pq.read_metadata(spec["file"]).metadata or {})),
    }


def with_duckdb(spec):
    import duckdb

    con = duckdb.connect()
    rel = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [spec["file"]]).fetchall()
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [spec["file"]]).fetchone()[0]
    col = spec["column"].replace('"', '""')
    filtered = con.execute(
        f'SELECT count(*) FROM read_parquet(?) WHERE "{col}" = ?', [spec["file"], spec["value"]]
    ).fetchone()[0]
    return {"types": {r[0]: r[1] for r in rel}, "rows": rows, "filtered": filtered}


def with_polars(spec):
    import polars as pl

    df = pl.read_parquet(spec["file"])
    filtered = df.filter(pl.col(spec["column"]) == spec["value"]).height
    return {"types": {k: str(v) for k, v in df.schema.items()}, "rows": df.height, "filtered": filtered}


def main():
    spec = json.loads(sys.argv[1])
    out = {}
    for name, f in [("pyarrow", with_pyarrow), ("duckdb", with_duckdb), ("polars", with_polars)]:
        try:
            out[name] = f(spec)
        except Exception as e:  # reported, not raised: the test prints every reader's result
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
