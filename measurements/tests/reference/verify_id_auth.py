"""Verifies an SNP ID block / ID auth pair with Python's `cryptography` (OpenSSL), an
implementation independent of the Rust code that produced it.

Usage: verify_id_auth.py ID_BLOCK_B64 ID_AUTH_B64
Prints "ok" and exits 0 when the ID-block signature (and the author signature of the ID
key, when the author algorithm is set) verify; exits 1 otherwise.
"""

import base64
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils


def pubkey(raw):
    assert int.from_bytes(raw[0:4], "little") == 2, "curve is not P-384"
    x = int.from_bytes(raw[4:4 + 72], "little")
    y = int.from_bytes(raw[4 + 72:4 + 144], "little")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP384R1()).public_key()


def verify(key, sig, msg):
    r = int.from_bytes(sig[0:72], "little")
    s = int.from_bytes(sig[72:144], "little")
    key.verify(utils.encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA384()))


def main():
    block = base64.b64decode(sys.argv[1])
    auth = base64.b64decode(sys.argv[2])
    assert len(block) == 0x60 and len(auth) == 0x1000
    id_key_raw = auth[0x240:0x240 + 0x404]
    try:
        verify(pubkey(id_key_raw), auth[0x40:0x240], block)
        if int.from_bytes(auth[4:8], "little") == 1:
            verify(pubkey(auth[0x880:0x880 + 0x404]), auth[0x680:0x880], id_key_raw)
    except InvalidSignature:
        print("bad signature")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
