# The way in: `make demo` runs a campaign on loopback, `make test` runs every test.
# Both install what is missing (Debian packages, npm into the tree) and build first.

BUILD ?= build
BUILD_ASAN ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build build-asan test test-fast test-asan demo bench format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_ASAN)/Makefile:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DMAGNETIC_SANITIZE=ON $(CMAKE_FLAGS)

build-asan: deps $(BUILD_ASAN)/Makefile
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# Every test in the normal build, then again under AddressSanitizer and UBSan.
test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 900
	@echo "bounce classification against the corpora (held by tests/feedback/corpus_score_test.cc):"
	@$(BUILD)/tests/feedback/feedback_test --gtest_filter='CorpusScore.*' 2>&1 \
	  | grep -E '^(bounces/eml|arf/)' || echo "  (corpora absent: not scored)"
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2 --timeout 900

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 900

demo: build
	$(BUILD)/magnetic demo

bench: build
	bench/send_bench.sh

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
