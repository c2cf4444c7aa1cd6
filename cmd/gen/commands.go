package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// command is one of gen's commands besides generation: `gen NAME [args]`.
type command struct {
	name    string
	summary string // one line for gen -h
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands holds the registered commands by name; each command's file
// registers itself with register in an init function.
var commands = map[string]command{}

// register adds c to gen's commands. Two commands of one name are a bug.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("gen: command " + c.name + " registered twice")
	}
	commands[c.name] = c
}

// commandList returns the usage lines of the registered commands, sorted.
func commandList() string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(commands)) {
		fmt.Fprintf(&b, "  gen %-10s %s\n", name, commands[name].summary)
	}
	return b.String()
}
