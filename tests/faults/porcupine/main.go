// Command notes-linearizability checks a recorded history of session-note operations with
// porcupine: each note (a client's session and key) is a register; a write whose answer was
// lost stays pending to the end of the history (it may or may not have taken effect).
//
// It reads {"operations": [...]} as JSON on standard input and prints {"result": ...}:
// "Ok" (exit 0), "Illegal" (exit 1) or "Unknown" (the check timed out; exit 2).
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

type operation struct {
	Client   int     `json:"client"`
	Register string  `json:"register"`
	Op       string  `json:"op"` // "set" or "get"
	Value    *string `json:"value"`
	Found    bool    `json:"found"`
	Call     int64   `json:"call"`
	Return   *int64  `json:"return"` // null: the answer was lost
}

type note struct {
	Present bool
	Value   string
}

var model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byRegister := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			key := op.Input.(operation).Register
			if _, seen := byRegister[key]; !seen {
				order = append(order, key)
			}
			byRegister[key] = append(byRegister[key], op)
		}
		parts := make([][]porcupine.Operation, 0, len(order))
		for _, key := range order {
			parts = append(parts, byRegister[key])
		}
		return parts
	},
	Init: func() interface{} { return note{} },
	Step: func(state, input, _ interface{}) (bool, interface{}) {
		current, op := state.(note), input.(operation)
		if op.Op == "set" {
			return true, note{Present: true, Value: *op.Value}
		}
		if !op.Found {
			return !current.Present, current
		}
		return current.Present && current.Value == *op.Value, current
	},
}

func main() {
	var input struct {
		Operations []operation `json:"operations"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		fmt.Fprintln(os.Stderr, "bad history:", err)
		os.Exit(3)
	}
	history := make([]porcupine.Operation, 0, len(input.Operations))
	for _, op := range input.Operations {
		returned := int64(math.MaxInt64)
		if op.Return != nil {
			returned = *op.Return
		}
		history = append(history, porcupine.Operation{
			ClientId: op.Client, Input: op, Call: op.Call, Output: nil, Return: returned,
		})
	}
	result := porcupine.CheckOperationsTimeout(model, history, 30*time.Second)
	fmt.Printf("{\"result\": %q, \"operations\": %d}\n", result, len(history))
	switch result {
	case porcupine.Ok:
		os.Exit(0)
	case porcupine.Illegal:
		os.Exit(1)
	default:
		os.Exit(2)
	}
}
