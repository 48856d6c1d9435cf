"""Cost of PII field encryption, decryption and blind indexing in-process (no database).

Prints JSON and merges it into bench/results.json; the reference is a plain SHA-256 of the same
value measured in the same run.
Usage: .venv/bin/python bench/pii_cost.py [--n 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
import uuid

from common import Result, write_results

from tenantcrm.pii.cipher import TenantCipher


def per_call_us(work, values) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for value in values:
            work(value)
        samples.append((time.perf_counter() - start) / len(values) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    cipher = TenantCipher.build("0123456789abcdef", {1: os.urandom(32)}, 1, os.urandom(32))
    row = uuid.uuid4()
    values = [f"{310101199001010000 + i}" for i in range(n)]
    blobs = [cipher.encrypt("customers", "national_id_enc", row, v) for v in values]
    reference = per_call_us(lambda v: hashlib.sha256(v.encode()).digest(), values)
    figures = {
        "encrypt": per_call_us(lambda v: cipher.encrypt("customers", "national_id_enc", row, v), values),
        "decrypt": per_call_us(lambda b: cipher.decrypt("customers", "national_id_enc", row, b), blobs),
        "blind_index": per_call_us(lambda v: cipher.blind_index("national_id", v), values),
    }
    entries = [
        {
            "name": f"pii.{name}",
            "p50_ms": round(us / 1000, 5),
            "p99_ms": None,
            "throughput": round(1e6 / us),
            "reference": round(reference / 1000, 5),
            "ratio": round(us / reference, 2),
            "target": None,
            "met": None,
            "notes": f"median of 5 loops over {n} values, per call; reference: sha256 of the value",
        }
        for name, us in figures.items()
    ]
    write_results([Result(**entry) for entry in entries])  # bench/results.json, like the other benches
    print(json.dumps(entries, indent=1))


if __name__ == "__main__":
    main()
