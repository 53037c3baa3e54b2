"""Computes launch digests with sev-snp-measure 0.0.13's own library, for a list of cases.

Reads a JSON array of cases on stdin and writes a JSON array of results on stdout, one per
case: {"digest": hex} or {"error": "ExceptionType: message"}. The vCPU signature is
resolved here with the reference's own table and formula, independently of the tool under
test. One process for the whole matrix keeps the comparison fast.
"""

import json
import sys

from sevsnpmeasure import guest, vcpu_types
from sevsnpmeasure.sev_mode import SevMode
from sevsnpmeasure.vmm_types import VMMType


def vcpu_sig(case):
    if case["mode"] == "sev":
        return 0
    if case.get("family") is not None:
        return vcpu_types.cpu_sig(case["family"], case["model"], case["stepping"])
    if case.get("vcpu_sig") is not None:
        return case["vcpu_sig"]
    if case.get("vcpu_type") is not None:
        return vcpu_types.CPU_SIGS[case["vcpu_type"]]
    return None


def compute(case):
    if case["mode"] == "snp:ovmf-hash":
        return guest.calc_snp_ovmf_hash(case["ovmf"]).hex()
    digest = guest.calc_launch_digest(
        SevMode.from_str(case["mode"]),
        case.get("vcpus"),
        vcpu_sig(case),
        case["ovmf"],
        case.get("kernel"),
        case.get("initrd"),
        case.get("append"),
        case.get("guest_features", 1),
        case.get("snp_ovmf_hash") or "",
        VMMType[case.get("vmm_type", "QEMU")],
        False,
        case.get("svsm") or "",
        case.get("vars_size") or 0,
    )
    return digest.hex()


def main():
    results = []
    for case in json.load(sys.stdin):
        try:
            results.append({"digest": compute(case)})
        except Exception as e:  # every failure is a result to compare, not a crash
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
