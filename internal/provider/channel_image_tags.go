package provider

// immutable_channel's image_tags: registry tags that mirror a channel.
// The channel's move, written once in the store, is the truth; a tag is a
// pointer apply moves after it, so that what pulls by tag (Flux, Argo CD,
// `docker pull`) follows the channel. image_tag_targets records what this
// channel pointed each tag at, and only once it did: a tag that failed
// stays behind in state, the next plan shows it again, and the next apply
// retries it.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
)

// tagTarget is one mirrored tag: repository:tag pointed at digest, the
// manifest of the release's image name.
type tagTarget struct {
	name       string // the image's name in the release; "" when read back from state
	repository string
	tag        string
	digest     string
}

func (t tagTarget) key() string { return t.repository + ":" + t.tag }

// parseTagKey splits "registry/repo:tag" (the registry may have a port:
// the tag follows the last ':' after the last '/').
func parseTagKey(key string) (repository, tag string, ok bool) {
	i := strings.LastIndex(key, ":")
	if i < 0 || i < strings.LastIndex(key, "/") {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// imageTagTargets are the tags imageTags (image name → tag) mirror for
// the release record rec, by key, or an error on image_tags naming what
// is wrong; hint ends each detail.
func imageTagTargets(rec *release.Record, imageTags map[string]string, hint string) (map[string]tagTarget, diag.Diagnostics) {
	var diags diag.Diagnostics
	out := map[string]tagTarget{}
	for _, n := range slices.Sorted(maps.Keys(imageTags)) {
		at := path.Root("image_tags").AtMapKey(n)
		ref, ok := rec.Images[n]
		if !ok {
			have := "it has no images"
			if len(rec.Images) > 0 {
				have = "its images are " + strings.Join(slices.Sorted(maps.Keys(rec.Images)), ", ")
			}
			diags.AddAttributeError(at, "Image not in the version", fmt.Sprintf("image_tags names the image %q, which %s@%s does "+
				"not have: %s. Name one of its images, or move the channel to a version that has it.", n, rec.Name, rec.Version, have)+hint)
			continue
		}
		repo, sum, err := registry.SplitDigestRef(ref)
		if err != nil {
			diags.AddAttributeError(at, "Release image not pinned", fmt.Sprintf("%s@%s names the image %q as %s: %v.", rec.Name, rec.Version, n, ref, err)+hint)
			continue
		}
		t := tagTarget{name: n, repository: repo, tag: imageTags[n], digest: sum.String()}
		if other, dup := out[t.key()]; dup {
			diags.AddAttributeError(at, "Two images mirror to one tag", fmt.Sprintf("image_tags points %s at both %q and %q "+
				"(both are in %s): a tag names one image. Give them different tags.", t.key(), other.name, n, repo)+hint)
			continue
		}
		out[t.key()] = t
	}
	return out, diags
}

// tagTargetsValue is targets as image_tag_targets.
func tagTargetsValue(targets map[string]tagTarget) types.Map {
	m := make(map[string]string, len(targets))
	for k, t := range targets {
		m[k] = t.digest
	}
	return stringMap(m)
}

// tagTargetsOf reads image_tag_targets back (null: none).
func tagTargetsOf(ctx context.Context, v types.Map) (map[string]tagTarget, diag.Diagnostics) {
	out := map[string]tagTarget{}
	if v.IsNull() || v.IsUnknown() {
		return out, nil
	}
	var m map[string]string
	diags := v.ElementsAs(ctx, &m, false)
	for k, d := range m {
		repo, tag, ok := parseTagKey(k)
		if !ok {
			diags.AddAttributeError(path.Root("image_tag_targets"), "Invalid mirrored tag", fmt.Sprintf("%q is not registry/repository:tag. This is a bug in the provider.", k))
			continue
		}
		out[k] = tagTarget{repository: repo, tag: tag, digest: d}
	}
	return out, diags
}

// tagsToPoint are the targets apply points: all of them after a move (so
// a tag moved by hand is put back), else those not already pointed where
// planned (a new tag, or one a failed apply left behind); sorted by key.
func tagsToPoint(planned, prior map[string]tagTarget, moved bool) []tagTarget {
	var out []tagTarget
	for _, k := range slices.Sorted(maps.Keys(planned)) {
		if p, ok := prior[k]; moved || !ok || p.digest != planned[k].digest {
			out = append(out, planned[k])
		}
	}
	return out
}

// planImageTags fills plan.ImageTagTargets from plan.ImageTags and the
// record of plan.Version (rec, or read from the store when nil), and
// warns of tags apply will move that the registry has pointing elsewhere
// than the state says. moved: the plan moves the channel. The registry is
// asked only about the tags apply points, so an unchanged channel asks
// nothing.
func (r *ChannelResource) planImageTags(ctx context.Context, plan, prior *channelModel, rec *release.Record, moved bool) diag.Diagnostics {
	var diags diag.Diagnostics
	if mapUnknown(plan.ImageTags) {
		plan.ImageTagTargets = types.MapUnknown(types.StringType)
		return diags
	}
	if plan.ImageTags.IsNull() {
		plan.ImageTagTargets = types.MapNull(types.StringType)
		return diags
	}
	var imageTags map[string]string
	if diags.Append(plan.ImageTags.ElementsAs(ctx, &imageTags, false)...); diags.HasError() {
		return diags
	}
	if rec == nil {
		var err error
		b := r.data.store.Backend()
		rec, err = r.data.trust.Get(ctx, b, plan.Release.ValueString(), plan.Version.ValueString())
		if err == nil {
			err = r.data.trust.CheckChannel(ctx, b, plan.Channel.ValueString(), rec)
		}
		if err != nil {
			diags.Append(releaseError(r.data.store, plan.Release.ValueString(), err))
			return diags
		}
	}
	planned, d := imageTagTargets(rec, imageTags, destroyHint)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	plan.ImageTagTargets = tagTargetsValue(planned)
	had := map[string]tagTarget{}
	if prior != nil {
		had, d = tagTargetsOf(ctx, prior.ImageTagTargets)
		if diags.Append(d...); diags.HasError() {
			return diags
		}
	}
	if point := tagsToPoint(planned, had, moved); len(point) > 0 {
		diags.Append(r.warnTagsElsewhere(ctx, point, had)...)
	}
	return diags
}

// warnTagsElsewhere says which of the tags apply points (one request
// each) the registry has pointing elsewhere than this channel left them:
// moved by hand since, or, for a tag this channel never pointed, at
// another image. Only warnings: the registry is not the truth here.
func (r *ChannelResource) warnTagsElsewhere(ctx context.Context, point []tagTarget, had map[string]tagTarget) diag.Diagnostics {
	var diags diag.Diagnostics
	c, err := r.data.registries.get(ctx)
	if err != nil {
		diags.AddAttributeWarning(path.Root("image_tags"), "Cannot read the mirrored tags", "Setting up the registry client: "+err.Error())
		return diags
	}
	var byHand, taken []string
	for _, t := range point {
		now, ok, err := c.TagTarget(ctx, t.repository, t.tag)
		if err != nil {
			diags.AddAttributeWarning(path.Root("image_tags"), "Cannot read a mirrored tag",
				registryMessage(err)+" The plan cannot say where the tag points now; apply points it at "+t.digest+".")
			continue
		}
		nowText := "nothing (it does not exist)"
		if ok {
			nowText = now.String()
		}
		switch p, recorded := had[t.key()]; {
		case recorded && (!ok || now.String() != p.digest):
			byHand = append(byHand, fmt.Sprintf("%s: %s, not %s as this channel left it; apply points it at %s", t.key(), nowText, p.digest, t.digest))
		case !recorded && ok && now.String() != t.digest:
			taken = append(taken, fmt.Sprintf("%s: %s -> %s", t.key(), nowText, t.digest))
		}
	}
	if len(byHand) > 0 {
		diags.AddAttributeWarning(path.Root("image_tag_targets"), "Mirrored tags moved outside Terraform",
			"These tags point elsewhere than this channel pointed them (moved by hand, or by another tool):\n  "+
				strings.Join(byHand, "\n  ")+"\nThe channel's move in the store is the truth, and the tags mirror it.")
	}
	if len(taken) > 0 {
		diags.AddAttributeWarning(path.Root("image_tags"), "Apply moves tags",
			"These tags point at another image now; apply points them at the channel's:\n  "+strings.Join(taken, "\n  ")+
				"\nTags are pointers: whatever pulls by tag follows. Deploy by digest to pin.")
	}
	return diags
}

// pointTags points the tags of m.ImageTagTargets apply must point (all of
// them after a move) and leaves in m.ImageTagTargets only what is
// pointed: a tag that failed keeps the target prior had (or none), so the
// next plan shows it and the next apply points it again. Each image's
// manifest is read once, by digest, from its repository (verified), as
// the tag's PUT needs its bytes. created: the channel was created by this
// apply (an error then makes Terraform taint it).
func (r *ChannelResource) pointTags(ctx context.Context, m *channelModel, prior types.Map, moved, created bool) diag.Diagnostics {
	var diags diag.Diagnostics
	if m.ImageTagTargets.IsNull() {
		return diags
	}
	if m.ImageTagTargets.IsUnknown() {
		// image_tags was unknown at plan: the targets come from the record now.
		b := r.data.store.Backend()
		rec, err := r.data.trust.Get(ctx, b, m.Release.ValueString(), m.Version.ValueString())
		if err == nil {
			err = r.data.trust.CheckChannel(ctx, b, m.Channel.ValueString(), rec)
		}
		if err != nil {
			diags.Append(releaseError(r.data.store, m.Release.ValueString(), err))
			return diags
		}
		var imageTags map[string]string
		if diags.Append(m.ImageTags.ElementsAs(ctx, &imageTags, false)...); diags.HasError() {
			return diags
		}
		planned, d := imageTagTargets(rec, imageTags, "")
		if diags.Append(d...); diags.HasError() {
			m.ImageTagTargets = prior
			return diags
		}
		m.ImageTagTargets = tagTargetsValue(planned)
	}
	planned, d := tagTargetsOf(ctx, m.ImageTagTargets)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	had, d := tagTargetsOf(ctx, prior)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	point := tagsToPoint(planned, had, moved)
	if len(point) == 0 {
		return diags
	}
	c, err := r.data.registries.get(ctx)
	if err != nil {
		diags.AddError("Cannot set up the registry client", err.Error())
		m.ImageTagTargets = keptTargets(planned, had, point, nil)
		return diags
	}
	manifests := map[string]*registry.Resolved{}
	var failed []string
	var pointed []tagTarget
	for _, t := range point {
		ref := t.repository + "@" + t.digest
		img, ok := manifests[ref]
		if !ok {
			img, err = c.Resolve(ctx, ref)
			if err == nil && img.Digest.String() != t.digest {
				err = fmt.Errorf("the registry served %s for %s", img.Digest, ref) // Resolve checks a digest reference; kept as a guard
			}
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s -> %s: reading the image's manifest: %s", t.key(), t.digest, registryMessage(err)))
				continue
			}
			manifests[ref] = img
		}
		if err := c.Tag(ctx, t.repository, t.tag, img.Descriptor, img.Manifest); err != nil {
			failed = append(failed, fmt.Sprintf("%s -> %s: %s", t.key(), t.digest, registryMessage(err)))
			continue
		}
		pointed = append(pointed, t)
	}
	m.ImageTagTargets = keptTargets(planned, had, point, pointed)
	if len(failed) > 0 {
		diags.AddAttributeError(path.Root("image_tags"), tagsFailedSummary(moved), tagsFailedDetail(m, failed, point, created))
	}
	return diags
}

// keptTargets is what state records after pointing point: the planned
// targets apply did not need to point, and those it pointed; a tag that
// failed keeps its prior target, if it had one.
func keptTargets(planned, had map[string]tagTarget, point, pointed []tagTarget) types.Map {
	out := map[string]tagTarget{}
	for k, t := range planned {
		out[k] = t
	}
	for _, t := range point {
		if !slices.Contains(pointed, t) {
			delete(out, t.key())
			if p, ok := had[t.key()]; ok {
				out[t.key()] = p
			}
		}
	}
	return tagTargetsValue(out)
}

func tagsFailedSummary(moved bool) string {
	if moved {
		return "Channel moved; registry tags not mirrored"
	}
	return "Registry tags not mirrored"
}

// tagsFailedDetail says that the channel is where it is (the move stands)
// and which tags failed, why, and what to do.
func tagsFailedDetail(m *channelModel, failed []string, point []tagTarget, created bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The channel %s of %s points to %s (move %d): that move is written in the store, and "+
		"data.immutable_channel and every plan read it. But these registry tags that mirror it were not pointed at its images:\n  %s\n",
		m.Channel.ValueString(), m.Release.ValueString(), m.Version.ValueString(), m.Move.ValueInt64(), strings.Join(failed, "\n  "))
	var pins []string
	for _, t := range point {
		if pin := t.repository + "@" + t.digest; !slices.Contains(pins, pin) {
			pins = append(pins, pin)
		}
	}
	fmt.Fprintf(&b, "Tags are pointers, not identity: what %s names, and what to deploy, is the digest (%s); whatever pulls "+
		"these tags still gets the image they pointed at before. ", m.Version.ValueString(), strings.Join(pins, ", "))
	b.WriteString("The next apply points them again. A registry with immutable tags (ECR IMMUTABLE, Harbor rules) refuses " +
		"to move a tag every time: mirror to a repository whose tags may move, or take the tag out of image_tags.")
	if created {
		b.WriteString(" Terraform marks a resource whose creation failed as tainted and would create this channel again, " +
			"which the existing channel refuses: run `terraform untaint` on this resource first (the channel is managed here), then apply.")
	}
	return b.String()
}
