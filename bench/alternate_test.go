package bench

import (
	"reflect"
	"testing"
)

func TestAlternate(t *testing.T) {
	t.Parallel()
	var order []int
	runs := alternate(3, 3, func(i int) float64 {
		order = append(order, i)
		return float64(10*i + len(order))
	})
	if want := []int{0, 1, 2, 1, 2, 0, 2, 0, 1}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v: each round starts with the next system", order, want)
	}
	want := [][]float64{{1, 6, 8}, {12, 14, 19}, {23, 25, 27}}
	if !reflect.DeepEqual(runs, want) {
		t.Errorf("runs %v, want %v", runs, want)
	}
}
