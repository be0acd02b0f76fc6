// decode reads plugin answers (one JSON document per file argument) and decodes each one exactly
// as the argoproj-labs/metric-ai plugin's Go client does: encoding/json into typed fields, so a
// float confidence, a string promote or a float executionTimeMs fails the decode.
// It prints one JSON line per file: {"file": ..., "ok": bool, "error": ..., "promote": ..., "confidence": ...}.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

type modelResult struct {
	ModelName       string `json:"modelName"`
	Analysis        string `json:"analysis"`
	RootCause       string `json:"rootCause"`
	Remediation     string `json:"remediation"`
	Promote         bool   `json:"promote"`
	Confidence      int    `json:"confidence"`
	ExecutionTimeMs int64  `json:"executionTimeMs"`
	Error           string `json:"error,omitempty"`
}

type agentResponse struct {
	Analysis        string        `json:"analysis"`
	RootCause       string        `json:"rootCause"`
	Remediation     string        `json:"remediation"`
	PRLink          string        `json:"prLink,omitempty"`
	Promote         bool          `json:"promote"`
	Confidence      int           `json:"confidence"`
	ModelResults    []modelResult `json:"modelResults,omitempty"`
	VotingRationale string        `json:"votingRationale,omitempty"`
}

type outcome struct {
	File       string `json:"file"`
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
	Promote    bool   `json:"promote"`
	Confidence int    `json:"confidence"`
	Models     int    `json:"models"`
}

func main() {
	encoder := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[1:] {
		result := outcome{File: path}
		body, err := os.ReadFile(path)
		if err == nil {
			var answer agentResponse
			err = json.Unmarshal(body, &answer)
			if err == nil {
				result.OK = true
				result.Promote = answer.Promote
				result.Confidence = answer.Confidence
				result.Models = len(answer.ModelResults)
			}
		}
		if err != nil {
			result.Error = err.Error()
		}
		if encodeErr := encoder.Encode(result); encodeErr != nil {
			fmt.Fprintln(os.Stderr, encodeErr)
			os.Exit(2)
		}
	}
}
