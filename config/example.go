package config

import _ "embed"

//go:embed cordon.example.yaml
var exampleYAML string

// ExampleYAML returns the fully commented example configuration
// (cordon.example.yaml), e.g. for a `cordon config example` command.
func ExampleYAML() string { return exampleYAML }
