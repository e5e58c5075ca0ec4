package store_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/store"
)

// lastSeq is st's newest log sequence.
func lastSeq(tb testing.TB, st *store.Store) uint64 {
	tb.Helper()
	seq, err := st.LastSeq()
	if err != nil {
		tb.Fatalf("read the log's sequence: %v", err)
	}
	return seq
}

// blobMeta is the metadata of st's photo sum, nil when there is none.
func blobMeta(tb testing.TB, st *store.Store, sum string) *store.BlobMeta {
	tb.Helper()
	m, err := st.BlobMeta(sum)
	if err != nil {
		tb.Fatalf("read photo %s: %v", sum, err)
	}
	return m
}
