#include "core/hash_locate.h"

#include <algorithm>
#include <cctype>

namespace ptbuild {
namespace {

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=' || c == '-' ||
         c == ':' || c == '_' || c == '.';
}

int line_of(std::string_view text, size_t offset) {
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n'));
}

// Occurrences of `needle` that stand alone (not inside a longer token).
void find_tokens(std::string_view text, std::string_view needle, HashOccurrence::Kind kind,
                 HashSpelling spelling, std::vector<HashOccurrence>& out) {
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) {
    bool starts = at == 0 || !token_char(text[at - 1]);
    size_t end = at + needle.size();
    bool ends = end == text.size() || !token_char(text[end]) ||
                (text[end] == '.' &&
                 (end + 1 == text.size() || !std::isalnum(static_cast<unsigned char>(text[end + 1]))));
    if (!starts || !ends) continue;
    bool taken = std::any_of(out.begin(), out.end(), [&](const HashOccurrence& o) {
      return at < o.offset + o.length && o.offset < end;  // already found in a longer spelling
    });
    if (!taken) out.push_back({kind, at, needle.size(), line_of(text, at), spelling, std::string(needle)});
  }
}

std::string_view line_at(std::string_view text, int line) {
  size_t start = 0;
  for (int l = 1; l < line; ++l) {
    start = text.find('\n', start);
    if (start == std::string_view::npos) return {};
    ++start;
  }
  size_t end = text.find('\n', start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

}  // namespace

std::vector<HashOccurrence> find_hash(std::string_view text, const Hash& hash) {
  std::vector<HashOccurrence> out;
  for (const auto& [spelling, spelled] : spellings_of(hash))
    find_tokens(text, spelled, hash.is_zero() ? HashOccurrence::Kind::zero : HashOccurrence::Kind::real,
                spelling, out);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  return out;
}

std::vector<HashOccurrence> find_fake_hashes(std::string_view text) {
  std::vector<HashOccurrence> out;
  for (HashAlgo algo : {HashAlgo::sha256, HashAlgo::sha512}) {
    Hash zero{algo, std::vector<uint8_t>(digest_size(algo), 0)};
    for (const auto& [spelling, spelled] : spellings_of(zero))
      find_tokens(text, spelled, HashOccurrence::Kind::zero, spelling, out);
  }
  // lib.fakeHash and friends, with whatever attribute path leads to lib.
  for (std::string_view name : {"fakeHash", "fakeSha256", "fakeSha512"}) {
    for (size_t at = text.find(name); at != std::string_view::npos; at = text.find(name, at + 1)) {
      size_t end = at + name.size();
      if (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
        continue;
      if (at < 4 || text.substr(at - 4, 4) != "lib.") continue;
      size_t start = at - 4;
      while (start > 0 && (std::isalnum(static_cast<unsigned char>(text[start - 1])) ||
                           text[start - 1] == '.' || text[start - 1] == '_'))
        --start;
      out.push_back({HashOccurrence::Kind::lib_fake, start, end - start, line_of(text, start),
                     HashSpelling::sri, std::string(text.substr(start, end - start))});
    }
  }
  // hash = ""; (and sha256, sha512, outputHash): Nix takes an empty hash for a fake one.
  for (size_t at = text.find("\"\""); at != std::string_view::npos; at = text.find("\"\"", at + 2)) {
    size_t line_start = text.rfind('\n', at);
    line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
    std::string_view before = text.substr(line_start, at - line_start);
    while (!before.empty() && before.back() == ' ') before.remove_suffix(1);
    if (before.empty() || before.back() != '=') continue;
    before.remove_suffix(1);
    while (!before.empty() && before.back() == ' ') before.remove_suffix(1);
    for (std::string_view attr : {"hash", "sha256", "sha512", "outputHash"})
      if (before.ends_with(attr) &&
          (before.size() == attr.size() ||
           !std::isalnum(static_cast<unsigned char>(before[before.size() - attr.size() - 1])))) {
        out.push_back({HashOccurrence::Kind::empty, at, 2, line_of(text, at), HashSpelling::sri, "\"\""});
        break;
      }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  return out;
}

std::string replacement_for(const HashOccurrence& o, const Hash& new_hash) {
  switch (o.kind) {
    case HashOccurrence::Kind::real:
      return format_hash(new_hash, o.spelling);
    case HashOccurrence::Kind::zero:
      return format_hash(new_hash, HashSpelling::sri);
    case HashOccurrence::Kind::empty:
    case HashOccurrence::Kind::lib_fake:
      return "\"" + format_hash(new_hash, HashSpelling::sri) + "\"";
  }
  return "";
}

std::string apply_replacements(std::string_view text,
                               const std::vector<std::pair<HashOccurrence, std::string>>& edits) {
  std::vector<std::pair<HashOccurrence, std::string>> sorted = edits;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first.offset > b.first.offset; });
  std::string out(text);
  for (const auto& [o, replacement] : sorted) out.replace(o.offset, o.length, replacement);
  return out;
}

int clue_distance(std::string_view text, const HashOccurrence& o, const SourceClues& clues, int window) {
  auto nearest = [&](const std::vector<std::string>& tokens) {
    for (int d = 0; d <= window; ++d)
      for (int line : {o.line - d, o.line + d}) {
        if (line < 1) continue;
        std::string_view l = line_at(text, line);
        for (const std::string& t : tokens)
          if (!t.empty() && l.find(t) != std::string_view::npos) return d;
      }
    return -1;
  };
  if (int d = nearest(clues.strong); d >= 0) return d;
  if (int d = nearest(clues.weak); d >= 0) return 1000 + d;
  return -1;
}

}  // namespace ptbuild
