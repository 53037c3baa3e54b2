# Keynet: the front door. `make` runs the main job, `make test` every test.
# Everything a target needs (Debian packages, the PyPI reference tool) is installed by the
# scripts it calls, idempotently.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
OVMF := out/ovmf/OVMF.fd
OVMF_SOURCES := $(wildcard ovmf/*.sh ovmf/*.py) ovmf/inputs.lock
# Reproducibility of the firmware was shown for exactly these sources (two clean builds).
OVMF_REPRO_STAMP := out/ovmf-repro/REPRODUCIBLE
SNP_MEASURE := target/release/snp-measure

IMAGE_VERSION = $(shell awk '$$1 == "image-version" { print $$2 }' guest-image/inputs.lock)

.DEFAULT_GOAL := all
.PHONY: all image publish reproduce image-repro boot-test relock ovmf digests test test-deps \
	check lint cargo-test ovmf-repro ovmf-fetch-test bench fuzz demo help clean disk-check soak

## all: main job, same as `make image`
all: image

## image: the reproducible guest image -> out/image/ (OVMF.fd vmlinuz initrd.img cmdline image.json manifest.json)
image:
	guest-image/build.sh

## publish: make out/image's record and digests the published ones (measurements/published/)
publish: image
	mkdir -p measurements/published
	cp out/image/image.json measurements/published/$(IMAGE_VERSION).image.json
	cp out/image/manifest.json measurements/published/$(IMAGE_VERSION).json
	@echo "published image $(IMAGE_VERSION): measurements/published/$(IMAGE_VERSION){.json,.image.json}"

## reproduce: auditor's check: rebuild a fresh clone (REF=HEAD) from scratch, compare with the published record
reproduce:
	guest-image/reproduce.sh

## image-repro: a second build from a copy at another path must give identical artifacts (part of make test)
image-repro: image
	guest-image/check-reproducible.sh

## boot-test: the published keynode cannot simulate; out/image under QEMU (TCG) refuses without SNP; a test image (simulated platform built in) attested; clean power-off
boot-test: image
	guest-image/boot-test.sh

## demo: a 4-node network on loopback (simulated platform): DKG, derived key, sign, stop a node, sign, restart it, sign
demo:
	node/demo.sh

## relock: re-pin the kernel package to what Debian serves now (KERNEL_PACKAGE=latest for a new ABI)
relock:
	guest-image/relock.sh

## ovmf: build OVMF (AmdSev) from pinned source -> out/ovmf/OVMF.fd, out/ovmf/ovmf.json
ovmf: $(OVMF)

$(OVMF): $(OVMF_SOURCES)
	ovmf/build.sh

$(SNP_MEASURE): FORCE
	$(CARGO) build --release --locked -p snp-measure --bin snp-measure

## digests: print the firmware hash and SNP launch digests of out/ovmf/OVMF.fd
digests: $(OVMF) $(SNP_MEASURE)
	@echo "firmware:  $(OVMF)  sha256 $$(sha256sum $(OVMF) | cut -d' ' -f1)"
	@echo "ovmf-hash: $$($(SNP_MEASURE) ovmf-hash --ovmf $(OVMF))"
	@echo "SNP launch digests (QEMU, guest features 0x1, no kernel):"
	@for t in EPYC-Milan EPYC-Genoa EPYC-Turin; do for n in 1 2 4 8; do \
	    printf '  %-11s %3s vCPUs  %s\n' $$t $$n \
	        "$$($(SNP_MEASURE) --mode snp --vcpus $$n --vcpu-type $$t --ovmf $(OVMF))"; \
	done; done

## check: the fast inner loop: formatting, clippy, unit and router-level tests, the wire contract (no image, no cluster)
check: lint
	CARGO_INCREMENTAL=0 $(CARGO) test --workspace --lib --bins --locked
	CARGO_INCREMENTAL=0 $(CARGO) test --locked -p keynet-protocol --test api --test digests
	CARGO_INCREMENTAL=0 $(CARGO) test --locked -p keynet-eth --test vectors

## test: every test: formatting, clippy, unit/integration tests, firmware and image reproducibility, boots
test: disk-check test-deps lint cargo-test ovmf-fetch-test boot-test

# A clean `make test` peaks at about 4 GB on disk (target/, out/, the OVMF and second image
# builds in /tmp). Said before it starts, so that a full disk is not first seen as a linker
# crash half an hour later; a warm tree needs less, so this warns and goes on.
TEST_DISK_GB := 5
disk-check:
	@for d in . /tmp; do \
	    free=$$(df -Pk "$$d" | awk 'NR == 2 { print int($$4 / 1048576) }'); \
	    if (( free < $(TEST_DISK_GB) )); then \
	        echo "WARNING: $$free GB free in $$d; a clean 'make test' needs about $(TEST_DISK_GB) GB" >&2; \
	    fi; \
	done

## test-deps: what the tests need (reproducible firmware and image, reference tools, Debian OVMF)
test-deps: ovmf-repro $(OVMF) image image-repro
	measurements/tests/reference/setup.sh
	protocol/tests/reference/setup.sh

## ovmf-repro: two clean firmware builds must be identical and equal the pinned sha256
ovmf-repro: $(OVMF_REPRO_STAMP)

$(OVMF_REPRO_STAMP): $(OVMF_SOURCES)
	ovmf/check-reproducible.sh
	touch $@

# The test run builds each crate once: incremental caches (1.7 GB) would only fill the disk.
# The second clippy is keynode as the image builds it: without the simulated platform (the
# tests' targets always have it, through keynode's dev-dependency on itself).
lint:
	$(CARGO) fmt --all -- --check
	CARGO_INCREMENTAL=0 $(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	CARGO_INCREMENTAL=0 $(CARGO) clippy -p keynode --lib --bins --locked -- -D warnings

cargo-test:
	CARGO_INCREMENTAL=0 $(CARGO) test --workspace --locked

# The firmware fetch from a checkout under a mode-0700 directory, where apt cannot sandbox
# its downloads (it must still refuse every signature or fetch failure).
ovmf-fetch-test:
	ovmf/tests/fetch-private-dir.sh

## bench: snp-measure vs sev-snp-measure (time, peak memory); snp-verify vs ring and snpguest; DKG and signing (in process, and end to end over attested TLS); decryption end to end; encryption of 1 GiB
bench: test-deps
	$(CARGO) bench --locked -p snp-measure --bench vs_reference
	$(CARGO) bench --locked -p attestation-verifier --bench verify
	$(CARGO) bench --locked -p keynet-threshold --bench threshold
	$(CARGO) bench --locked -p keynode --bench threshold_network
	$(CARGO) bench --locked -p keynet-encryption --bench throughput

## soak: 7 nodes for 10 minutes under mixed load, SIGKILLs, a fast clock and a full disk; prints the table (SOAK_SECONDS, SOAK_NODES)
soak:
	guest-image/deps.sh
	SOAK_SECONDS=$${SOAK_SECONDS:-600} SOAK_NODES=$${SOAK_NODES:-7} \
		$(CARGO) test --locked -p keynode --test soak -- --nocapture

## fuzz: coverage-guided fuzzing of the verifier's parsers, 60 s per target (FUZZ_SECONDS=N)
fuzz:
	attestation-verifier/fuzz/run.sh $${FUZZ_SECONDS:-60}

## clean: remove build outputs (keeps downloaded source tarballs in out/cache)
clean:
	$(CARGO) clean
	rm -rf out/ovmf out/ovmf-repro out/ref-venv out/protocol-venv out/bench \
		out/image out/image-build out/image-repro out/image-test

help:
	@grep -E '^## ' Makefile | sed 's/^## /  make /'

FORCE:
