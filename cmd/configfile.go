package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/echoctl/echoctl/internal/regfile"
)

// maxConfigSize bounds what is read of a config file. echoctl's files are
// flat lists of keys, a few KiB at most; a path to something huge fails
// rather than filling memory (a 200 MB YAML file took 834 MB to parse).
const maxConfigSize = 1 << 20

// readConfigFile parses a config file, in the format its extension names
// (configType), into a viper of its own. The file is read by
// regfile.Read (a regular file of at most maxConfigSize bytes: a FIFO
// would block the command, deaf to SIGINT), and parsed by configDecoders,
// which also refuse what viper's parsers accept silently.
func readConfigFile(file string) (*viper.Viper, error) {
	format, err := configType(file)
	if err != nil {
		return nil, err
	}
	data, err := regfile.Read(file, maxConfigSize, "a config file")
	if err != nil {
		return nil, regfile.Cause(err)
	}
	fv := viper.NewWithOptions(viper.WithDecoderRegistry(configDecoders{viper.NewCodecRegistry()}))
	fv.SetConfigType(format)
	if len(bytes.TrimSpace(data)) == 0 {
		// An empty file sets nothing, whatever its format: as an empty
		// YAML or TOML file parses, so does an empty .json, which is no
		// JSON value.
		return fv, nil
	}
	if err := fv.ReadConfig(bytes.NewReader(data)); err != nil {
		// Not "While parsing config": the file parsed.
		if ce := (configContentError{}); errors.As(err, &ce) {
			return nil, ce
		}
		return nil, err
	}
	return fv, nil
}

// configType returns the format of a config file, from its extension, in
// any case: .yaml, .yml or none: YAML; .toml: TOML; .json: JSON. Any other
// extension, including those of viper's other formats, is an error.
func configType(file string) (string, error) {
	switch ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(file), ".")); ext {
	case "yaml", "yml", "":
		return "yaml", nil
	case "toml", "json":
		return ext, nil
	default:
		return "", viper.UnsupportedConfigError(ext)
	}
}

// configDecoders is the viper.DecoderRegistry config files are parsed
// with: viper's own decoders, each followed by checkConfigContent.
type configDecoders struct{ viper.DecoderRegistry }

// Decoder returns viper's decoder of format, wrapped in a configDecoder.
func (r configDecoders) Decoder(format string) (viper.Decoder, error) {
	d, err := r.DecoderRegistry.Decoder(format)
	if err != nil {
		return nil, err
	}
	return configDecoder{Decoder: d, format: format}, nil
}

// configDecoder is a viper.Decoder that checks what it decoded with
// checkConfigContent before viper lower-cases the keys, which would hide
// keys that differ only in case.
type configDecoder struct {
	viper.Decoder
	format string
}

// Decode decodes b into v, then checks it.
func (d configDecoder) Decode(b []byte, v map[string]any) error {
	if err := d.Decoder.Decode(b, v); err != nil {
		return err
	}
	if err := checkConfigContent(d.format, b, v); err != nil {
		return configContentError{err}
	}
	return nil
}

// configContentError is a problem with a config file that parses: a
// second YAML document, a key set twice, a null, an integer not written
// in decimal.
type configContentError struct{ err error }

func (e configContentError) Error() string { return e.err.Error() }
func (e configContentError) Unwrap() error { return e.err }

// checkConfigContent refuses what the parsers of config files accept
// silently: a YAML file of more than one document (the parser reads the
// first and ignores the rest), a key set twice in JSON (the last one wins),
// an integer that is not decimal in YAML and TOML (decimalYAMLInts), and,
// in every format, two keys that differ only in case, which viper would
// merge into one, and a null (checkSettings). settings is b as format's parser decoded it,
// before viper lower-cases its keys. The YAML and TOML parsers refuse
// exact duplicates themselves.
func checkConfigContent(format string, b []byte, settings map[string]any) error {
	switch format {
	case "yaml":
		if err := singleYAMLDocument(b); err != nil {
			return err
		}
		if err := decimalYAMLInts(b); err != nil {
			return err
		}
	case "toml":
		if err := decimalTOMLInts(b); err != nil {
			return err
		}
	case "json":
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := uniqueJSONKeys(dec, ""); err != nil {
			return err
		}
	}
	return checkSettings(settings, "")
}

// decimalInt matches an integer as echoctl takes it anywhere: decimal,
// with an optional sign and no leading zero.
var decimalInt = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)

// checkDecimal refuses text, an integer the parser of format read at key,
// unless it is decimal: YAML reads 0100 as octal (64) and both parsers
// read 0x10, 0o10, 0b11 and 1_0, where a flag or a variable refuses them.
// unix-mode is the one key written in octal (fileMode).
func checkDecimal(format, key, text string) error {
	if key == keyUnixMode || decimalInt.MatchString(text) {
		return nil
	}
	why := "integers are decimal; 0x10, 0o10, 0b11 and 1_0 are refused"
	sign, digits := "", text
	if len(text) > 0 && (text[0] == '-' || text[0] == '+') {
		sign, digits = text[:1], text[1:]
	}
	if d := strings.TrimLeft(digits, "0"); format == "yaml" && d != "" && decimalInt.MatchString(d) {
		why = fmt.Sprintf("YAML would read it as octal; write %s%s for the decimal number", strings.TrimPrefix(sign, "+"), d)
	}
	return fmt.Errorf("key %q: %s is not a decimal integer (%s)", key, quoteValue(text), why)
}

// decimalYAMLInts refuses an integer in YAML b (one document, which
// parses) that is not decimal (checkDecimal).
func decimalYAMLInts(b []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil // reported by the parser
	}
	var walk func(n *yaml.Node, path string) error
	walk = func(n *yaml.Node, path string) error {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				if err := walk(c, path); err != nil {
					return err
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := walk(n.Content[i+1], joinKey(path, strings.ToLower(n.Content[i].Value))); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			if n.ShortTag() == "!!int" {
				return checkDecimal("yaml", path, n.Value)
			}
		}
		return nil
	}
	return walk(&doc, "")
}

// decimalTOMLInts refuses an integer in TOML b that is not decimal
// (checkDecimal); TOML itself has no leading zeros.
func decimalTOMLInts(b []byte) error {
	var p unstable.Parser
	p.Reset(b)
	var walk func(n *unstable.Node, path string) error
	walk = func(n *unstable.Node, path string) error {
		switch n.Kind {
		case unstable.Integer:
			return checkDecimal("toml", path, string(n.Data))
		case unstable.Array:
			for it := n.Children(); it.Next(); {
				if err := walk(it.Node(), path); err != nil {
					return err
				}
			}
		case unstable.InlineTable, unstable.KeyValue:
			if n.Kind == unstable.KeyValue {
				return walk(n.Value(), joinKey(path, tomlKey(n.Key())))
			}
			for it := n.Children(); it.Next(); {
				if err := walk(it.Node(), path); err != nil {
					return err
				}
			}
		}
		return nil
	}
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = tomlKey(e.Key())
		case unstable.KeyValue:
			if err := walk(e, table); err != nil {
				return err
			}
		}
	}
	return nil // a file that does not parse is reported by the parser
}

// tomlKey joins the parts of a dotted TOML key with ".", lower-cased, as
// viper names it.
func tomlKey(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, strings.ToLower(string(it.Node().Data)))
	}
	return strings.Join(parts, ".")
}

// singleYAMLDocument refuses YAML that holds more than one document: a
// file with "---" between two would otherwise be read up to it, and what
// follows would never be checked.
func singleYAMLDocument(b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil // empty, or reported by the parser
	}
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("more than one YAML document (---), and the second does not parse: %w; a config file holds one", err)
	default:
		return fmt.Errorf("more than one YAML document (---): a second starts at line %d; a config file holds one", doc.Line)
	}
}

// uniqueJSONKeys reads one JSON value from dec, which must parse, and
// refuses an object in it with a key twice, exactly or but for case.
// path is the value's key, joined with "." as viper names nested keys.
func uniqueJSONKeys(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]string{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			lower := strings.ToLower(key)
			if first, ok := seen[lower]; ok {
				return duplicateKeyError(path, first, key)
			}
			seen[lower] = key
			if err := uniqueJSONKeys(dec, joinKey(path, lower)); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for dec.More() {
			if err := uniqueJSONKeys(dec, path); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// checkSettings refuses, in v (a decoded config file, at key path), a
// table with two keys that differ only in case, and a key set to null
// (YAML's ~ or null, JSON's null), which viper would take as unset, and
// the default, without a word. The keys are looked at in sorted order, so
// that the message does not depend on map order.
func checkSettings(v any, path string) error {
	switch x := v.(type) {
	case nil:
		return fmt.Errorf("key %q is null: give it a value, or leave it out for its default", path)
	case map[string]any:
		seen := map[string]string{}
		for _, key := range slices.Sorted(maps.Keys(x)) {
			lower := strings.ToLower(key)
			if first, ok := seen[lower]; ok {
				return duplicateKeyError(path, first, key)
			}
			seen[lower] = key
			if err := checkSettings(x[key], joinKey(path, lower)); err != nil {
				return err
			}
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, item := range x {
			m[fmt.Sprint(k)] = item
		}
		return checkSettings(m, path)
	case []any:
		for _, item := range x {
			if item == nil {
				return fmt.Errorf("key %q holds a null item: give each item a value", path)
			}
			if err := checkSettings(item, path); err != nil {
				return err
			}
		}
	}
	return nil
}

// duplicateKeyError says that the table at path has the key first and
// then again as second, the same but perhaps for case.
func duplicateKeyError(path, first, second string) error {
	key := joinKey(path, strings.ToLower(second))
	if first == second {
		return fmt.Errorf("key %q is set twice", key)
	}
	return fmt.Errorf("key %q is set twice, as %q and %q (keys are not case-sensitive)", key, first, second)
}

// joinKey names key of the table at path as viper does: "faults.delay".
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
