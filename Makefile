.PHONY: run test bench
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
bench:
	swift build -c release --product vigil && .build/release/vigil bench ingest && .build/release/vigil bench search
