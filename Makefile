# lode - thin wrapper: the real build is CMake (CMakeLists.txt).
#   make demo   install missing Debian packages, build, ingest docs/, show the trace
#   make test   install missing Debian packages, build, run every test (ctest),
#               then again under ASan+UBSan and TSan
#   make bench  build and run the benchmarks under bench/
#   make fuzz   build the libFuzzer targets with clang and run each briefly
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

DEB_PACKAGES = build-essential cmake pkg-config \
  liblua5.4-dev lua5.4 libsqlite3-dev sqlite3 libcurl4-openssl-dev libcjson-dev \
  libcmocka-dev lua-busted libutf8proc-dev libxxhash-dev libxml2-dev \
  libpoppler-glib-dev libmd4c-dev zlib1g-dev python3 python3-pytest python3-yaml \
  python3-jsonschema chromium postgresql libpq-dev \
  libprotobuf-c-dev protobuf-c-compiler python3-protobuf protobuf-compiler \
  nodejs npm openssl

.PHONY: all deps build demo test test-sanitizers bench fuzz clean

all: build

# Installs only what is missing; needs root or sudo the first time. A
# package whose command is already there counts as present (npm comes with
# NodeSource's nodejs, which conflicts with Debian's npm package).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || \
	  command -v $$p >/dev/null 2>&1 || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./scripts/demo.sh $(BUILD)/lode

# Every test on the release-like build, then again under ASan+UBSan (with
# LeakSanitizer) and under TSan (the worker threads and the exporter).
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-sanitizers

# What the sanitizer builds leave out, to keep `make test` well under 20
# minutes on two cores: the fuzzers (make fuzz), the checks that read the
# sources and not the binary (layers, CLI layout); under TSan also what runs
# no thread of its own beyond the normal run's (docs, install, CLI parsing,
# the store, the HTML page) and the PostgreSQL copies of suites whose SQLite
# runs TSan keeps (test_postgres, with the lease thread, stays).
ASAN_SKIP = ^fuzz|test_layers|test_cli_layout
TSAN_SKIP = ^fuzz|test_layers|test_cli_layout|test_docs|test_install|test_cli$$|test_store_search|test_trace_html|_pg$$|\.pg$$

test-sanitizers: deps
	cmake -S . -B $(BUILD)-asan -DLODE_ASAN=ON -DLODE_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) -E '$(ASAN_SKIP)'
	cmake -S . -B $(BUILD)-tsan -DLODE_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && G_SLICE=always-malloc TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure -j $(JOBS) -E '$(TSAN_SKIP)'

bench: build
	./bench/run.sh $(BUILD)

fuzz: deps
	./tests/fuzz/run.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz .lode
