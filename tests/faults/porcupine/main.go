// Command notes-linearizability checks a recorded history with porcupine, under one of two
// models. "notes": each session note (a client's session and key) is a register; a write whose
// answer was lost stays pending to the end of the history (it may or may not have taken
// effect). "plans": each plan's status is a monotone register that only the gateway moves,
// accepted -> running -> settled (one terminal status, never left): an acknowledged
// create_plan puts it at accepted at least, and every plan_status read must see the status
// at or past the last one any read saw before it (never back to running after a settled read,
// never a second terminal status).
//
// It reads {"model": "notes" | "plans", "operations": [...]} as JSON on standard input (no
// model: notes) and prints {"result": ...}: "Ok" (exit 0), "Illegal" (exit 1) or "Unknown"
// (the check timed out; exit 2).
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
	Op       string  `json:"op"` // notes: "set" or "get"; plans: "create" or "status"
	Value    *string `json:"value"`
	Found    bool    `json:"found"`
	Call     int64   `json:"call"`
	Return   *int64  `json:"return"` // null: the answer was lost
}

type note struct {
	Present bool
	Value   string
}

// A plan's status as its reads saw it: a rank (0 accepted, 1 running, 2 settled) and, once
// settled, which terminal status.
type plan struct {
	Rank     int
	Terminal string
}

func rank(status string) int {
	switch status {
	case "accepted":
		return 0
	case "running", "paused", "cancelling":
		return 1
	default:
		return 2
	}
}

var planModel = porcupine.Model{
	Partition: byRegister,
	Init:      func() interface{} { return plan{Rank: -1} },
	Step: func(state, input, _ interface{}) (bool, interface{}) {
		current, op := state.(plan), input.(operation)
		if op.Op == "create" {
			return current.Rank == -1, plan{Rank: 0}
		}
		seen := rank(*op.Value)
		if seen < current.Rank || (current.Rank == 2 && current.Terminal != *op.Value) {
			return false, current
		}
		next := plan{Rank: seen}
		if seen == 2 {
			next.Terminal = *op.Value
		}
		return true, next
	},
}

func byRegister(history []porcupine.Operation) [][]porcupine.Operation {
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
}

var model = porcupine.Model{
	Partition: byRegister,
	Init:      func() interface{} { return note{} },
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
		Model      string      `json:"model"`
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
	chosen := model
	if input.Model == "plans" {
		chosen = planModel
	}
	result := porcupine.CheckOperationsTimeout(chosen, history, 30*time.Second)
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
