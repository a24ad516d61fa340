# cordon — `make test` installs what the tests need and runs every test.
GO ?= go
FUZZTIME ?= 10s
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: test deps lint unit fuzz bench bench-compare demo build

test: deps lint unit fuzz

deps:
	./scripts/install-test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# cordon beside MediaMTX (MEDIAMTX=/path/to/mediamtx), each pinned to one
# core: the README's "Measured" table. Not part of `make test`.
bench-compare:
	./scripts/bench-compare.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/cordon ./cmd/cordon

demo:
	$(GO) run ./cmd/cordon demo
