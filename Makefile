# lode - thin wrapper: the real build is CMake (CMakeLists.txt).
#   make demo   install missing Debian packages, build, ingest docs/, show the trace
#   make test   install missing Debian packages, build, run every test (ctest)
#   make bench  build and run the benchmarks under bench/
#   make fuzz   build the libFuzzer targets with clang and run each briefly
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

DEB_PACKAGES = build-essential cmake pkg-config \
  liblua5.4-dev lua5.4 libsqlite3-dev sqlite3 libcurl4-openssl-dev libcjson-dev \
  libcmocka-dev lua-busted libutf8proc-dev libxxhash-dev libgumbo-dev \
  libpoppler-glib-dev libmd4c-dev python3 python3-pytest python3-yaml \
  python3-jsonschema

.PHONY: all deps build demo test bench fuzz clean

all: build

# Installs only what is missing; needs root or sudo the first time.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
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

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	./bench/run.sh $(BUILD)

fuzz: deps
	./tests/fuzz/run.sh

clean:
	rm -rf $(BUILD) .lode
