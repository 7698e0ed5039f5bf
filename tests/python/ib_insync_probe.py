"""Drive real ib_insync against the simulated gateway and print what it got, as JSON.

Run by tests/integration/sim/python.rs (which compares the bars with what the Rust `ibapi`
client gets from the same simulator), or by hand:

    python tests/python/ib_insync_probe.py HOST PORT SPEC_JSON

SPEC_JSON (a string or @file) names the contracts to use:
  client_id, symbol, under_con_id,
  option: {expiry, strike, right}       an existing option (qualified, then bars),
  missing: {expiry, strike, right}      an option that does not exist (qualify -> 200),
  no_data_con_id                        a contract with no trades in the last session (162),
  expired_con_id                        an expired option (200),
  end                                   end date-time text for the 30 mins request.

The last line of stdout is one JSON object. Exit status 1 when connecting took a second or
more or an ib_insync decoder error was logged (a message it could not parse).
IB_PROBE_MODULE=ib_async runs the same probe with ib_async (it negotiates version 178).
"""

import asyncio
import importlib
import json
import logging
import os
import sys
import time

# ib_async (the maintained fork, same API) with IB_PROBE_MODULE=ib_async.
_MOD = os.environ.get("IB_PROBE_MODULE", "ib_insync")
_ib = importlib.import_module(_MOD)
IB, Contract, Option = _ib.IB, _ib.Contract, _ib.Option


class Collect(logging.Handler):
    """Keeps the ERROR records of ib_insync's decoder and IB (timeouts, parse failures)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(f"{record.name}: {record.getMessage()}")


def bar_rows(bars):
    """[epoch seconds, open, high, low, close, volume] per bar; dates with a zone become epochs."""
    rows = []
    for b in bars:
        d = b.date
        ts = d.timestamp() if hasattr(d, "timestamp") else d.isoformat()
        rows.append([int(ts) if isinstance(ts, float) else ts,
                     b.open, b.high, b.low, b.close, b.volume])
    return rows


async def main(host, port, spec):
    decoder_log = Collect()
    for name in (f"{_MOD}.Decoder", f"{_MOD}.ib", f"{_MOD}.client"):
        logging.getLogger(name).addHandler(decoder_log)
    out = {}
    errors = []
    ib = IB()
    ib.errorEvent += lambda req_id, code, msg, _c: errors.append([req_id, code, msg])

    t0 = time.perf_counter()
    await ib.connectAsync(host, port, clientId=spec["client_id"], timeout=5)
    out["connect_secs"] = time.perf_counter() - t0
    out["server_version"] = ib.client.serverVersion()
    out["accounts"] = ib.managedAccounts()
    out["current_time"] = int((await ib.reqCurrentTimeAsync()).timestamp())

    chains = await ib.reqSecDefOptParamsAsync(spec["symbol"], "", "STK", spec["under_con_id"])
    out["chain"] = [
        {
            "exchange": c.exchange,
            "underlyingConId": int(c.underlyingConId),
            "tradingClass": c.tradingClass,
            "multiplier": c.multiplier,
            "expirations": list(c.expirations),
            "strikes": list(c.strikes),
        }
        for c in chains
    ]

    o = spec["option"]
    m = spec["missing"]
    opt = Option(spec["symbol"], o["expiry"], o["strike"], o["right"], "SMART", currency="USD")
    missing = Option(spec["symbol"], m["expiry"], m["strike"], m["right"], "SMART",
                     currency="USD")
    # ib_insync drops unknown contracts from the result, ib_async 2.x leaves None in place.
    qualified = [c for c in await ib.qualifyContractsAsync(opt, missing) if c is not None]
    out["qualified"] = [
        {"conId": c.conId, "localSymbol": c.localSymbol, "tradingClass": c.tradingClass,
         "multiplier": c.multiplier, "expiry": c.lastTradeDateOrContractMonth,
         "strike": c.strike, "right": c.right}
        for c in qualified
    ]
    details = await ib.reqContractDetailsAsync(opt)
    out["details"] = [
        {"underConId": d.underConId, "longName": d.longName, "minTick": d.minTick,
         "timeZoneId": d.timeZoneId, "realExpirationDate": d.realExpirationDate}
        for d in details
    ]
    out["head_timestamp"] = int(
        (await ib.reqHeadTimeStampAsync(opt, "TRADES", True, 2)).timestamp())

    # Bars: 8 hours with formatDate 2 (epoch) and an empty end (now); 30 mins with formatDate 1
    # (`YYYYMMDD HH:MM:SS US/Eastern`) and an explicit end. Run concurrently, as a real script
    # would.
    h8, m30 = await asyncio.gather(
        ib.reqHistoricalDataAsync(opt, "", "1 M", "8 hours", "MIDPOINT", True, 2),
        ib.reqHistoricalDataAsync(opt, spec["end"], "5 D", "30 mins", "TRADES", True, 1),
    )
    out["bars_8h"] = bar_rows(h8)
    out["bars_30m"] = bar_rows(m30)
    out["bars_30m_tz"] = str(m30[0].date.tzinfo) if m30 else None

    # Errors end a request with no bars (ib_insync's default RaiseRequestErrors = False).
    n0 = len(errors)
    no_data = await ib.reqHistoricalDataAsync(
        Contract(conId=spec["no_data_con_id"], exchange="SMART"), "", "1 D", "30 mins",
        "TRADES", True, 2)
    out["no_data"] = {"bars": len(no_data), "errors": errors[n0:]}
    n0 = len(errors)
    expired = await ib.reqHistoricalDataAsync(
        Contract(conId=spec["expired_con_id"], exchange="SMART"), "", "1 M", "8 hours",
        "MIDPOINT", True, 2)
    out["expired"] = {"bars": len(expired), "errors": errors[n0:]}

    # Cancel: the request is in flight for at least the service's minimum latency.
    n0 = len(errors)
    req_id = ib.client._reqIdSeq  # the id reqHistoricalDataAsync will take
    task = asyncio.ensure_future(
        ib.reqHistoricalDataAsync(opt, "", "2 M", "8 hours", "TRADES", True, 2))
    await asyncio.sleep(0.02)
    ib.client.cancelHistoricalData(req_id)
    cancelled = await asyncio.wait_for(task, 10)
    out["cancel"] = {"req_id": req_id, "bars": len(cancelled), "errors": errors[n0:]}

    out["all_errors"] = errors
    out["log_errors"] = [r for r in decoder_log.records
                         if "Decoder" in r or "timed out" in r or "Error handling" in r]
    ib.disconnect()
    return out


if __name__ == "__main__":
    host, port, spec = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if spec.startswith("@"):
        with open(spec[1:]) as f:
            spec = f.read()
    result = asyncio.run(main(host, port, json.loads(spec)))
    print(json.dumps(result))
    problems = []
    if result["connect_secs"] >= 1.0:
        problems.append(f"connect took {result['connect_secs']:.3f} s")
    if result["log_errors"]:
        problems.append(f"ib_insync logged errors: {result['log_errors']}")
    if problems:
        print("; ".join(problems), file=sys.stderr)
        sys.exit(1)
