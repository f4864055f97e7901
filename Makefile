# moebus — the two set-up commands are `make demo` and `make test`.
# Both install what is missing (deploy/bootstrap.sh), build, and run.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-asan test test-fast test-asan demo bench fuzz format clean

all: build

deps:
	bash deploy/bootstrap.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMOEBUS_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# The whole suite: unit, integration, fuzz smoke and bench smoke in the normal
# build, then unit + integration again under AddressSanitizer + UBSan.
test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j2
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j2 -L 'unit|integration'

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j2 -L 'unit|integration'

test-asan: build-asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j2 -L 'unit|integration'

demo: build
	bash deploy/demo.sh $(BUILD)/services/moebus

bench: build
	$(BUILD)/tests/bench/bench_bus $(BUILD)/services/moebus
	OMP_NUM_THREADS=1 $(BUILD)/tests/bench/bench_index $(BUILD)/services/moebus
	OMP_NUM_THREADS=2 $(BUILD)/tests/bench/bench_lsa --docs 60000
	OMP_NUM_THREADS=1 $(BUILD)/tests/bench/bench_router
	bash tests/bench/bench_ingest.sh $(BUILD)/services/moebus || [ $$? -eq 77 ]

fuzz: build
	$(BUILD)/tests/fuzz/fuzz_body -max_total_time=300 $(BUILD)/tests/fuzz/corpus tests/fuzz/corpus

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
