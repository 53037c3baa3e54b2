"""The eth-account side of the keynet-protocol registry tests.

Reads a JSON array of requests on stdin and writes a JSON array of answers, one per
request, so a test pays the import cost once. Requests ({"op": ..., ...}):

  sign_registry  registry, key   canonical message built here from the registry object
                                 (sorted keys, no whitespace, staker EIP-55), signed with
                                 encode_defunct + Account.sign_message
  sign_text      text, key       EIP-191 signature of a text
  hash           text            EIP-191 hash of a text
  recover        text, signature address recovered by Account.recover_message
  address        key             the checksummed address of a private key
  checksum       address         to_checksum_address, and whether the input passes
                                 is_checksum_address

Answers carry "error" instead when eth-account refuses the input. `ethref.py selftest`
checks the installation against eth-account's own documented example.
"""

import json
import sys

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_utils import is_checksum_address, to_checksum_address


def hex0x(data):
    return "0x" + bytes(data).hex()


def canonical(registry):
    """The registry's canonical message, built independently of the Rust code."""
    registry = json.loads(json.dumps(registry))
    for node in registry["nodes"]:
        node["staker"] = to_checksum_address(node["staker"])
        node["identity_key"] = node["identity_key"].lower()
    return json.dumps(registry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign(text, key):
    signed = Account.sign_message(encode_defunct(text=text), private_key=key)
    return {
        "hash": hex0x(_hash_eip191_message(encode_defunct(text=text))),
        "signature": hex0x(signed.signature),
        "address": Account.from_key(key).address,
    }


def answer(req):
    op = req["op"]
    if op == "sign_registry":
        message = canonical(req["registry"])
        return {"message": message, **sign(message, req["key"])}
    if op == "sign_text":
        return sign(req["text"], req["key"])
    if op == "hash":
        return {"hash": hex0x(_hash_eip191_message(encode_defunct(text=req["text"])))}
    if op == "recover":
        address = Account.recover_message(
            encode_defunct(text=req["text"]), signature=bytes.fromhex(req["signature"][2:])
        )
        return {"address": address}
    if op == "address":
        return {"address": Account.from_key(req["key"]).address}
    if op == "checksum":
        return {
            "address": to_checksum_address(req["address"]),
            "valid_checksum": is_checksum_address(req["address"]),
        }
    raise ValueError(f"unknown op {op!r}")


def safe_answer(req):
    try:
        return answer(req)
    except Exception as e:  # noqa: BLE001 - the test wants eth-account's refusal, whatever it is
        return {"error": f"{type(e).__name__}: {e}"}


def selftest():
    # eth-account's documented example (docs and Account.sign_message docstring).
    key = "0xb25c7db31feed9122727bf0939dc769a96564b2de4c4726d035b36ecf1e5b364"
    got = sign("I\u2665SF", key)
    want = {
        "hash": "0x1476abb745d423bf09273f1afd887d951181d25adc66c4834a70491911b7f750",
        "signature": "0xe6ca9bba58c88611fad66a6ce8f996908195593807c4b38bd528d2cff09d4eb3"
        "3e5bfbbf4d3e39b1a2fd816a7680c19ebebaf3a141b239934ad43cb33fcec8ce1c",
        "address": "0x5ce9454909639D2D17A3F753ce7d93fa0b9aB12E",
    }
    if got != want:
        sys.exit(f"eth-account self-test failed: got {got}, want {want}")
    print("eth-account self-test ok")


def main():
    if sys.argv[1:] == ["selftest"]:
        selftest()
        return
    requests = json.load(sys.stdin)
    json.dump([safe_answer(r) for r in requests], sys.stdout)


if __name__ == "__main__":
    main()
