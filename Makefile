# cordon — `make test` installs what the tests need and runs every test.
GO ?= go
FUZZTIME ?= 20s
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: test deps lint unit fuzz bench demo build

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

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/cordon ./cmd/cordon

demo:
	$(GO) run ./cmd/cordon demo
