# hotline — see README.md. The two commands a newcomer needs: make run, make test.
GO        ?= go
BIN       := bin
DATA_DIR  ?= ./var
PKGS      := ./...
# Fuzz targets run briefly in `make test` (seconds each).
FUZZTIME  ?= 3s

.PHONY: all build run test unit integration fuzz bench prompts deps clean vet

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run: build
	$(BIN)/hotlined --data-dir $(DATA_DIR)

# make test installs what the integration tests need when it runs as root
# (sip-tester, PostgreSQL), starts PostgreSQL on loopback, then runs every
# test; with CI=true no integration test may skip.
test: deps vet
	. scripts/test-env.sh && $(GO) test -count=1 -timeout 20m $(PKGS)
	$(MAKE) fuzz

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

deps:
	bash scripts/test-deps.sh

fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

bench: build deps
	. scripts/test-env.sh && bash scripts/bench.sh

prompts:
	$(GO) run ./prompts/gen -dir prompts

clean:
	rm -rf $(BIN)
