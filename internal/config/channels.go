package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// TypeBlock returns the channel's type name and its block as read: Type when it is set, or else
// the one key of Blocks. ok is false when there is no type block, or more than one.
func (c Channel) TypeBlock() (typ string, raw map[string]any, ok bool) {
	if c.Type != "" {
		raw, _ = blockMap(c.Blocks[c.Type])
		return c.Type, raw, true
	}
	if len(c.Blocks) != 1 {
		return "", nil, false
	}
	for k, v := range c.Blocks {
		raw, ok = blockMap(v)
		return k, raw, ok
	}
	return "", nil, false
}

// blockMap reads a type block: a map, or nothing at all (`log:` with no value is `log: {}`).
func blockMap(v any) (map[string]any, bool) {
	switch b := v.(type) {
	case nil:
		return map[string]any{}, true
	case map[string]any:
		return b, true
	}
	return nil, false
}

// channelBlocks checks the keys of channel i besides the shared ones and, given types, decodes
// its type block, setting Type and Settings. Every problem has its path in the file's spelling:
// "channels[2].slack.channel: required with tokenFrom".
func (c *Channel) channelBlocks(i int, types ChannelTypes, spelled map[string]string) []string {
	path := fmt.Sprintf("channels[%d]", i)
	var known []string
	if types != nil {
		known = types.Types()
	}
	var problems, blocks []string
	unknownType := false
	keys := make([]string, 0, len(c.Blocks))
	for k := range c.Blocks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		_, isBlock := blockMap(c.Blocks[k])
		name := respell(path+"."+k, spelled)
		switch {
		case types != nil && slices.ContainsFunc(known, func(t string) bool { return strings.EqualFold(t, k) }):
			if !isBlock {
				problems = append(problems, name+": must be a block of settings (a map)")
				continue
			}
			blocks = append(blocks, k)
		case !isBlock:
			problems = append(problems, name+": unknown key")
		case types != nil:
			unknownType = true
			problems = append(problems, fmt.Sprintf("%s: unknown channel type %q (known: %s)",
				path, strings.TrimPrefix(name, path+"."), strings.Join(known, ", ")))
		default:
			blocks = append(blocks, k)
		}
	}
	switch {
	case len(blocks) == 0 && !unknownType:
		hint := ""
		if len(known) > 0 {
			hint = "; add one of: " + strings.Join(known, ", ")
		}
		return append(problems, path+": no channel type set"+hint)
	case len(blocks) > 1:
		return append(problems, fmt.Sprintf("%s: more than one channel type set (%s); use one channel entry per type",
			path, strings.Join(blocks, ", ")))
	case len(blocks) == 0 || types == nil:
		return problems
	}
	typ := blocks[0]
	for _, t := range known {
		if strings.EqualFold(t, typ) {
			typ = t
		}
	}
	raw, _ := blockMap(c.Blocks[blocks[0]])
	settings, p := types.Decode(typ, raw)
	for _, line := range p {
		key, what, ok := strings.Cut(line, ": ")
		if !ok {
			problems = append(problems, fmt.Sprintf("%s.%s: %s", path, typ, line))
			continue
		}
		problems = append(problems, respell(path+"."+blocks[0]+"."+key, spelled)+": "+what)
	}
	if len(p) == 0 {
		c.Type, c.Settings = typ, settings
		if typ != blocks[0] {
			c.Blocks = map[string]any{typ: c.Blocks[blocks[0]]}
		}
	}
	return problems
}

// DecodeBlock decodes a channel's type block into out, a pointer to the type's config struct,
// as strictly as Load decodes the rest of the file: keys match field names in any case, a
// duration may be written "30s", a list "a,b", and an unknown key or a value of the wrong type is
// a problem. Each problem is "key: what is wrong", the key relative to the block; out keeps what
// did decode, so that its own validation can report the rest at once.
func DecodeBlock(raw map[string]any, out any) []string {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		ErrorUnused:      true,
		WeaklyTypedInput: true, // as viper decodes the rest of the file
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
	})
	if err != nil {
		return []string{fmt.Sprintf("(block): %v", err)}
	}
	if err := dec.Decode(raw); err != nil {
		return decodeProblems(err, func(path string) any { return lookup(raw, path) }, nil)
	}
	return nil
}

// lookup finds the value at a mapstructure path ("a.b", "to[1]") in a block as read, whose keys
// may be in any case; nil when there is none.
func lookup(raw map[string]any, path string) any {
	var cur any = raw
	for part := range strings.SplitSeq(path, ".") {
		name, index, _ := strings.Cut(part, "[")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = nil
		for k, v := range m {
			if strings.EqualFold(k, name) {
				cur = v
			}
		}
		if index != "" {
			var i int
			list, ok := cur.([]any)
			if _, err := fmt.Sscanf(index, "%d]", &i); err != nil || !ok || i < 0 || i >= len(list) {
				return nil
			}
			cur = list[i]
		}
	}
	return cur
}
