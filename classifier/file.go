package classifier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxRulesFileSize bounds what ParseRules reads. A real rules file is a few
// kilobytes; the bound stops a wrong path (a log, a device) from eating memory.
const maxRulesFileSize = 1 << 20

// rulesFile is the file's top level. It is a mapping rather than a bare list
// so that the format can grow without breaking old files.
type rulesFile struct {
	Rules []Rule `yaml:"rules"`
}

// ParseRules reads and validates a rules file: YAML (or JSON, which is YAML
// too) with a top-level "rules" list. It is strict, because a misspelt key
// silently ignored would turn a specific rule into a catch-all. Problems
// name the rule and its line. The rules come back as New keeps them (names
// trimmed and upper case), so New(rules) accepts them and Rules returns them
// unchanged.
func ParseRules(r io.Reader) ([]Rule, error) {
	rules, err := parseRules(r)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	return rules, nil
}

// LoadFile builds an Engine from a rules file, so that operators can follow
// Infobip's renames without a release.
func LoadFile(path string) (*Engine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	defer f.Close()
	rules, err := parseRules(f)
	if err != nil {
		return nil, fmt.Errorf("classifier: rules file %s: %w", path, err)
	}
	return New(rules)
}

func parseRules(r io.Reader) ([]Rule, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRulesFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRulesFileSize {
		return nil, fmt.Errorf("rules file is larger than %d bytes", maxRulesFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("rules file is empty: it needs a top-level rules list")
		}
		return nil, oneLine(err)
	}
	var rest yaml.Node
	switch err := dec.Decode(&rest); {
	case err == nil:
		return nil, errors.New("rules file holds more than one YAML document: keep every rule in the first")
	case !errors.Is(err, io.EOF):
		return nil, oneLine(err)
	}
	e, err := compile(f.Rules, ruleLines(data, len(f.Rules)))
	if err != nil {
		return nil, err
	}
	return e.Rules(), nil
}

// ruleLines finds the line of each item of the top-level rules list. It is
// best effort: when the shape is not the simple one, problems go without
// lines rather than with wrong ones.
func ruleLines(data []byte, n int) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "rules" {
			continue
		}
		seq := top.Content[i+1]
		if seq.Kind != yaml.SequenceNode || len(seq.Content) != n {
			return nil
		}
		lines := make([]int, n)
		for j, item := range seq.Content {
			lines[j] = item.Line
		}
		return lines
	}
	return nil
}

// oneLine flattens the YAML decoder's list of field errors, which it spreads
// over several lines, so that a log keeps the whole message together.
func oneLine(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("yaml: %s", strings.Join(te.Errors, "; "))
	}
	return err
}
