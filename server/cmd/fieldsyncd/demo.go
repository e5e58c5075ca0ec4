package main

import (
	"context"
	"io"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_ = ctx
	_ = args
	_, _ = stdout, stderr
	return nil
}
