package httpapi

import (
	"context"
	"errors"
	"testing"
)

// Pages beyond the slots wait for one to be given back, and a page whose
// client has gone stops waiting.
func TestPageSlots(t *testing.T) {
	p := newPageSlots()
	ctx := context.Background()
	for range cap(p) {
		if err := p.take(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// With every slot taken, only the client's leaving can end the wait.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.take(gone); !errors.Is(err, context.Canceled) {
		t.Fatalf("a page took a slot while all %d were taken (err %v)", cap(p), err)
	}
	p.give()
	if err := p.take(ctx); err != nil {
		t.Fatalf("a page got %v when a slot was given back", err)
	}

}
