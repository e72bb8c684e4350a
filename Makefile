# Convenience front end over CMake. The two commands a newcomer needs:
#   make demo   build, then stream an answer from the built-in model
#   make test   build, run every test, then again under ASan+UBSan, the API test under TSan, then fuzz
#               the GGUF reader briefly
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PROMPT ?= Draft a three-module course on photosynthesis

.PHONY: all build demo test quick-test asan-test tsan-test fuzz clean
all: build

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTY_WERROR=ON >/dev/null
	cmake --build build -j $(JOBS)

demo: build
	./build/trainyard generate -p "$(PROMPT)" -n 200

quick-test: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

asan-test:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTY_SANITIZE=ON -DTY_WERROR=ON -DTY_CUDA=OFF \
	  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)

# ThreadSanitizer over the public API test (a model shared by threads; the thread pool under it)
tsan-test:
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DTY_WERROR=ON -DTY_CUDA=OFF \
	  -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
	cmake --build build-tsan -j $(JOBS) --target test_api
	TSAN_OPTIONS=halt_on_error=1 ./build-tsan/test_api

fuzz:
	bash fuzz/run.sh $${FUZZ_SECONDS:-60}

test: quick-test asan-test tsan-test fuzz

clean:
	rm -rf build build-asan build-tsan build-fuzz
