"""Writes two fresh P-384 private keys with OpenSSL (through `cryptography`): the first in
SEC1 form ("EC PRIVATE KEY", what `openssl ecparam -genkey` writes), the second in PKCS#8.

Usage: gen_keys.py SEC1_PATH PKCS8_PATH
"""

import sys

from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ec

for path, fmt in ((sys.argv[1], s.PrivateFormat.TraditionalOpenSSL),
                  (sys.argv[2], s.PrivateFormat.PKCS8)):
    key = ec.generate_private_key(ec.SECP384R1())
    with open(path, "wb") as f:
        f.write(key.private_bytes(s.Encoding.PEM, fmt, s.NoEncryption()))
