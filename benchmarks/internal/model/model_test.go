package model

import (
	"reflect"
	"testing"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/tracking"
)

// TestStepApply checks that Apply of a step's change brings an equal order
// to the same state, as every contender relies on.
func TestStepApply(t *testing.T) {
	for _, w := range []Workload{OneItem, TenPercent} {
		ref, other := New(1, 100), New(1, 100)
		for k := range 25 {
			ch := Step(ref, w, k)
			Apply(other, ch)
			if !reflect.DeepEqual(ref, other) {
				t.Fatalf("%s, step %d: Apply gives another order", w, k)
			}
		}
		if len(ref.Items) != 100 {
			t.Fatalf("%s: %d items, want 100", w, len(ref.Items))
		}
	}
}

// TestHandMatchesDddkit checks that the hand-written copy and comparison
// agree with dddkit's on the model.
func TestHandMatchesDddkit(t *testing.T) {
	o := New(1, 50)
	c, err := tracking.Copy(o)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, CopyHand(o)) {
		t.Fatal("tracking.Copy and CopyHand differ")
	}
	for k := range 12 {
		cur := CopyHand(o)
		w := OneItem
		if k%2 == 1 {
			w = TenPercent
		}
		if k > 0 {
			Step(cur, w, k)
		}
		eq, err := diff.Equal(o, cur)
		if err != nil {
			t.Fatal(err)
		}
		if eq != EqualHand(o, cur) {
			t.Fatalf("step %d: diff.Equal %v, EqualHand %v", k, eq, !eq)
		}
	}
}
