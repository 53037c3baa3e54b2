#!/usr/bin/env python3
"""Writes canonical-v1.json: condition documents with their canonical form and hash,
computed here from the written specification (conditions/src/canonical.rs), independently
of the Rust implementation, which the tests then compare against this file.

    python3 conditions/tests/vectors/make_vectors.py > conditions/tests/vectors/canonical-v1.json
"""
import hashlib
import json

DOMAIN = b"keynet/conditions/v1\n"
A = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
B = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
C = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"


def s(text):
    # RFC 8259, minimal escaping, lowercase \u00xx, non-ASCII as UTF-8.
    return json.dumps(text, ensure_ascii=False)


def cond(c):
    (kind, v), = c.items()
    if kind == "address_is":
        return '{"address_is":%s}' % s(v.lower())
    if kind == "address_in":
        return '{"address_in":[%s]}' % ",".join(s(a) for a in sorted(a.lower() for a in v))
    if kind in ("time_before", "time_after"):
        return '{"%s":%d}' % (kind, v)
    if kind == "signed_by":
        return '{"signed_by":{"address":%s,"statement":%s}}' % (
            s(v["address"].lower()), s(v["statement"]))
    if kind in ("all", "any"):
        members = sorted((cond(m) for m in v), key=lambda x: x.encode())
        return '{"%s":[%s]}' % (kind, ",".join(members))
    raise ValueError(kind)


def doc(d):
    return '{"condition":%s,"version":%d}' % (cond(d["condition"]), d["version"])


cases = [
    ("address_is", {"version": 1, "condition": {"address_is": A}}),
    ("address_is lowercase input", {"version": 1, "condition": {"address_is": A.lower()}}),
    ("address_in unsorted", {"version": 1, "condition": {"address_in": [C, A, B]}}),
    ("time_before", {"version": 1, "condition": {"time_before": 1767225600}}),
    ("time_after zero", {"version": 1, "condition": {"time_after": 0}}),
    ("signed_by", {"version": 1, "condition": {"signed_by": {"statement": "I allow it", "address": B}}}),
    ("signed_by escapes", {"version": 1, "condition": {"signed_by": {
        "address": B, "statement": "quote \" backslash \\ tab \t nl \n nul \u0000 unit \u001f é ✓"}}}),
    ("all", {"version": 1, "condition": {"all": [{"time_before": 2000}, {"address_is": A}]}}),
    ("any nested", {"condition": {"any": [
        {"all": [{"address_in": [B, A]}, {"time_after": 1000}, {"time_before": 2000}]},
        {"signed_by": {"address": C, "statement": "override"}},
        {"time_after": 5000}]}, "version": 1}),
    ("any of one", {"version": 1, "condition": {"any": [{"address_is": C}]}}),
    ("deep", {"version": 1, "condition": {"all": [{"any": [{"all": [{"any": [
        {"time_after": 1}, {"time_after": 2}]}]}]}]}}),
]

out = []
for name, d in cases:
    canonical = doc(d)
    out.append({
        "name": name,
        "input": d,
        "canonical": canonical,
        "hash": hashlib.sha256(DOMAIN + canonical.encode()).hexdigest(),
    })
print(json.dumps(out, indent=1, ensure_ascii=False))
