"""The lake query three ways with polars (lazy scan) and DuckDB: glob over the per-contract
files, the files named by the filtered _index.parquet, and the exported Hive dataset.

Usage: lake_query.py SCOPE_DIR EXPORT_DIR SYMBOL EXPIRY(YYYY-MM-DD). Prints a Markdown table.
Run by benches/lake.rs, which sets POLARS_MAX_THREADS=1 (DuckDB is set to one thread here).
"""

import datetime
import sys
import time

import duckdb
import polars as pl

scope, export, symbol, expiry = sys.argv[1:5]
exp = datetime.date.fromisoformat(expiry)
con = duckdb.connect(config={"threads": 1})


def timed(f):
    t = time.perf_counter()
    n = f()
    return n, time.perf_counter() - t


def pl_glob():
    q = pl.scan_parquet(f"{scope}/*/*/*/*.parquet")
    return q.filter((pl.col("symbol") == symbol) & (pl.col("expiry") == exp)).select(pl.len()).collect().item()


def index_files():
    ix = pl.read_parquet(f"{scope}/_index.parquet")
    paths = ix.filter((pl.col("symbol") == symbol) & (pl.col("expiry") == exp))["path"]
    return [f"{scope}/{p}" for p in paths]


def pl_index():
    return pl.scan_parquet(index_files()).filter(pl.col("expiry") == exp).select(pl.len()).collect().item()


def pl_export():
    q = pl.scan_parquet(f"{export}/**/*.parquet", hive_partitioning=True)
    return q.filter((pl.col("symbol") == symbol) & (pl.col("expiry") == exp)).select(pl.len()).collect().item()


def dk(sql, params=None):
    return con.execute(sql, params or []).fetchall()[0][0]


def dk_glob():
    return dk(
        f"SELECT count(*) FROM read_parquet('{scope}/*/*/*/*.parquet') WHERE symbol = ? AND expiry = ?",
        [symbol, exp],
    )


def dk_index():
    files = [
        r[0]
        for r in con.execute(
            f"SELECT '{scope}/' || path FROM '{scope}/_index.parquet' WHERE symbol = ? AND expiry = ?",
            [symbol, exp],
        ).fetchall()
    ]
    return dk("SELECT count(*) FROM read_parquet(?) WHERE expiry = ?", [files, exp])


def dk_export():
    return dk(
        f"SELECT count(*) FROM read_parquet('{export}/**/*.parquet', hive_partitioning = true) "
        "WHERE symbol = ? AND expiry = ?",
        [symbol, exp],
    )


print(f"Query: bars of {symbol} expiring {expiry}, one thread, polars {pl.__version__} (lazy scan), DuckDB {duckdb.__version__}:")
print()
print("| engine | way | rows | time | vs glob |")
print("|---|---|---:|---:|---:|")
for engine, ways in [("polars", [pl_glob, pl_index, pl_export]), ("DuckDB", [dk_glob, dk_index, dk_export])]:
    base = None
    for name, f in zip(["glob over per-contract files", "index, then the files it names", "exported dataset"], ways):
        n, secs = timed(f)
        base = base or secs
        print(f"| {engine} | {name} | {n} | {secs:.3f} s | {base / secs:.0f}x |")
