# The two commands of the README:
#   make run    fetch ONNX Runtime, build gen, run it on the shipped model
#   make test   set up everything the tests need and run them all
MODEL ?= models/g2p-en.onnx
TEXT ?= hello

.PHONY: run test setup build
run:
	scripts/setup.sh ort go
	bin/gen -model $(MODEL) "$(TEXT)"

test:
	scripts/test.sh

setup:
	scripts/setup.sh

build:
	scripts/setup.sh go
