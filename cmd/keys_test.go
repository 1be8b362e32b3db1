package cmd

import (
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// keyCommands returns each command of a fresh tree that may have key
// flags, by the name keyFlag.on uses, with its flags parsed (which merges
// the root's persistent ones in).
func keyCommands(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	root := newRootCmd(Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	cmds := map[string]*cobra.Command{cmdEvery: root}
	for _, name := range []string{cmdServe, cmdSend, cmdBench, cmdPing} {
		c, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ParseFlags(nil); err != nil {
			t.Fatal(err)
		}
		cmds[name] = c
	}
	return cmds
}

// decodeKey decodes k alone from v, as loadConfig does.
func decodeKey(k key, v *viper.Viper, flags *pflag.FlagSet) (*Config, error) {
	d := decoder{v: v, flags: flags}
	cfg := &Config{}
	k.decode(&d, k.name, cfg)
	return cfg, d.err
}

// TestKeyFlagDefaults: for every key, on every command with its flag, the
// default the flag shows in --help decodes to what viper's default does,
// and every key has a decoder that accepts its default.
func TestKeyFlagDefaults(t *testing.T) {
	isolate(t)
	cmds := keyCommands(t)
	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			if k.decode == nil {
				t.Fatal("no decoder")
			}
			fromTable := viper.New()
			fromTable.SetDefault(k.name, k.def)
			want, err := decodeKey(k, fromTable, pflag.NewFlagSet("none", pflag.ContinueOnError))
			if err != nil {
				t.Fatalf("the default %#v does not decode: %v", k.def, err)
			}
			for _, kf := range k.flags {
				c, ok := cmds[kf.on]
				if !ok {
					t.Fatalf("flag on %q, which is not a command", kf.on)
				}
				f := c.Flags().Lookup(k.name)
				if f == nil {
					t.Fatalf("%s has no --%s", c.CommandPath(), k.name)
				}
				if f.Usage != kf.usage {
					t.Errorf("%s --%s usage %q, want %q", c.CommandPath(), k.name, f.Usage, kf.usage)
				}
				if f.Value.String() != f.DefValue {
					t.Fatalf("%s --%s is %q, not its default %q", c.CommandPath(), k.name, f.Value.String(), f.DefValue)
				}
				// A flag that is not set gives viper its default.
				fromFlag := viper.New()
				if err := fromFlag.BindPFlag(k.name, f); err != nil {
					t.Fatal(err)
				}
				got, err := decodeKey(k, fromFlag, c.Flags())
				if err != nil {
					t.Fatalf("%s --%s: its default %q does not decode: %v", c.CommandPath(), k.name, f.DefValue, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s --%s shows the default %q, which decodes to\n%+v\nbut the default used is %#v, which decodes to\n%+v",
						c.CommandPath(), k.name, f.DefValue, got, k.def, want)
				}
			}
		})
	}
}

// TestKeyFlagsOnlyFromTable: every flag named after a key is one the
// table gives that command, so that no command defines a key's flag (and
// its default) of its own; the only flags of a key's name that are not
// that key are these, which do not set it (isKeyFlag).
func TestKeyFlagsOnlyFromTable(t *testing.T) {
	notKeys := map[string]bool{"send --greeting": true, "bench --greeting": true}
	cmds := keyCommands(t)
	for on, c := range cmds {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			i := slices.IndexFunc(keys, func(k key) bool { return k.name == f.Name })
			if i < 0 {
				return
			}
			if notKeys[on+" --"+f.Name] {
				if isKeyFlag(f) {
					t.Errorf("%s --%s is marked as the key's flag", c.CommandPath(), f.Name)
				}
				return
			}
			if !isKeyFlag(f) {
				t.Errorf("%s --%s is not marked as the key's flag: it would not set the key", c.CommandPath(), f.Name)
			}
			if !slices.ContainsFunc(keys[i].flags, func(kf keyFlag) bool { return kf.on == on || kf.on == cmdEvery }) {
				t.Errorf("%s has --%s, which the keys table does not give it", c.CommandPath(), f.Name)
			}
		})
	}
}

// TestKnownKeysFromTable: the known keys (which config files are checked
// against) and the environment variables (which the unknown-variable
// warning knows) are the table's.
func TestKnownKeysFromTable(t *testing.T) {
	if len(knownKeys) != len(keys) {
		t.Fatalf("%d known keys, %d in the table", len(knownKeys), len(keys))
	}
	var environ []string
	for i, k := range keys {
		if knownKeys[i] != k.name {
			t.Errorf("knownKeys[%d] = %q, want %q", i, knownKeys[i], k.name)
		}
		environ = append(environ, envName(k.name)+"=1")
	}
	if w := unknownEnvWarnings(environ, pflag.NewFlagSet("none", pflag.ContinueOnError)); w != nil {
		t.Errorf("warnings about the keys' own variables: %q", w)
	}
}
