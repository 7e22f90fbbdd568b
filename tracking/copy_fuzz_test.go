package tracking

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/dddkit/dddkit/diff"
)

// byteSource is a rand.Source reading the fuzzer's bytes; when they run out
// it yields zeros, which the generator turns into nil and empty values.
type byteSource struct{ b []byte }

// Uint64 returns the next 8 bytes, big-endian, padded with zeros.
func (s *byteSource) Uint64() uint64 {
	var x uint64
	for range 8 {
		x <<= 8
		if len(s.b) > 0 {
			x |= uint64(s.b[0])
			s.b = s.b[1:]
		}
	}
	return x
}

// fuzzed is the type FuzzCopy builds: most kinds, recursive types,
// aggregates (with maps of entities in their children, and entities with
// an Equal method) and maps with NaN keys.
type fuzzed struct {
	r       *rich
	order   *Order
	t       *tree
	n       *node
	g       map[string]*graphNode
	list    []any
	weights map[float64]int
	cart    *mapCart
	lines   []*tagLine
}

// FuzzCopy builds values of a rich type from the fuzzer's bytes and checks
// their copies as TestCopyProperties does, and that package diff finds a
// copy equal to its original; when the first byte is 0xff it closes a cycle
// in the value and expects diff.ErrCycle.
func FuzzCopy(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("a realistic aggregate with a few items and some nested values in it"))
	seed := make([]byte, 512)
	r := rand.New(rand.NewPCG(7, 11))
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	f.Add(seed)
	cyclic := append([]byte{0xff}, seed[1:]...)
	f.Add(cyclic)

	f.Fuzz(func(t *testing.T, data []byte) {
		cycle := len(data) > 0 && data[0] == 0xff
		r := rand.New(&byteSource{data})
		v := generate[*fuzzed](r, 5)
		if cycle && v != nil && v.n != nil {
			last := v.n
			for last.next != nil {
				last = last.next
			}
			last.next = v.n
			_, err := Copy(v)
			if !errors.Is(err, diff.ErrCycle) {
				t.Fatalf("copy of a value with a cycle: got error %v, want %v", err, diff.ErrCycle)
			}
			return
		}
		c, err := Copy(v)
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		checkCopy(t, v, c)
		eq, err := diff.Equal(v, c)
		if errors.Is(err, diff.ErrDuplicateID) || errors.Is(err, diff.ErrNilEntity) {
			return // random identities may repeat, and entities be nil
		}
		if err != nil || !eq {
			r, _ := diff.Compare(v, c)
			t.Fatalf("a copy differs from its original: equal=%v, err=%v\n%s", eq, err, r)
		}
	})
}
