package main

import (
	"context"
	"errors"
	"io"
)

// runBench is replaced by the load generator.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("bench is not built yet")
}
