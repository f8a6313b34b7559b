{# Identifier normalization, shared by every staging model. The activation engine's
   vectorized normalizer (activations/destinations/identifiers.py) follows the same rules;
   a test checks that both agree on the same spellings. #}

{% macro normalize_email(expr) -%}
    {%- set email = 'lower(trim(' ~ expr ~ '))' -%}
    case
        when {{ email }} in ({% for p in var('identity_placeholder_emails') %}'{{ p }}'{{ ',' if not loop.last }}{% endfor %}) then null
        when {{ attiva.regex_matches(email, '^(test|noemail|no-email|nomail|none|null|noreply|no-reply|nobody|fake)@') }} then null
        when {{ attiva.regex_matches(email, '^[^@ ]+@[^@ ]+[.][a-z]{2,}$') }} then {{ email }}
    end
{%- endmacro %}

{# Why an email was set aside by normalize_email, for explaining merges without keeping the
   value: 'placeholder' (a value that means "no email"), 'malformed', or null (kept or empty). #}
{% macro email_set_aside(expr) -%}
    {%- set email = 'lower(trim(' ~ expr ~ '))' -%}
    case
        when {{ expr }} is null or {{ email }} = '' then null
        when {{ email }} in ({% for p in var('identity_placeholder_emails') %}'{{ p }}'{{ ',' if not loop.last }}{% endfor %}) then 'placeholder'
        when {{ attiva.regex_matches(email, '^(test|noemail|no-email|nomail|none|null|noreply|no-reply|nobody|fake)@') }} then 'placeholder'
        when {{ attiva.normalize_email(expr) }} is null then 'malformed'
    end
{%- endmacro %}

{# Why a phone was set aside by normalize_phone: 'placeholder' (no digits, one repeated
   digit, a listed placeholder), 'malformed', or null (kept or empty). #}
{% macro phone_set_aside(expr) -%}
    {%- set national = attiva.regex_replace_all('trim(' ~ expr ~ ')', '[^0-9]', '') -%}
    case
        when {{ expr }} is null or trim({{ expr }}) = '' then null
        when {{ national }} = '' then 'placeholder'
        when replace({{ national }}, substr({{ national }}, 1, 1), '') = '' then 'placeholder'
        when {{ national }} in ({% for p in var('identity_placeholder_phones') %}'{{ p }}'{{ ',' if not loop.last }}{% endfor %}) then 'placeholder'
        when {{ attiva.normalize_phone(expr) }} is null then 'malformed'
    end
{%- endmacro %}

{# E.164 with a default country code: '+39 333 1234567', '0039 3331234567', '333-123-4567'
   and '3331234567' all become '+393331234567'. Too short, too long or one repeated digit
   ('0000000000') is not a phone number. #}
{% macro normalize_phone(expr) -%}
    {%- set kept = attiva.regex_replace_all('trim(' ~ expr ~ ')', '[^0-9+]', '') -%}
    {%- set digits = attiva.regex_replace_all(kept, '[^0-9]', '') -%}
    {%- set national = attiva.regex_replace_all('trim(' ~ expr ~ ')', '[^0-9]', '') -%}
    case
        when length({{ national }}) < 6 then null
        when replace({{ national }}, substr({{ national }}, 1, 1), '') = '' then null
        when {{ national }} in ({% for p in var('identity_placeholder_phones') %}'{{ p }}'{{ ',' if not loop.last }}{% endfor %}) then null
        when {{ kept }} like '+%' and length({{ digits }}) between 8 and 15 then '+' || {{ digits }}
        when {{ kept }} like '00%' and length({{ digits }}) between 10 and 17 then '+' || substr({{ digits }}, 3)
        when {{ kept }} not like '+%' and {{ kept }} not like '00%' and length({{ digits }}) between 6 and 11
            then '+{{ var("default_phone_country_code") }}' || {{ digits }}
    end
{%- endmacro %}

{# Trimmed, inner whitespace collapsed; empty and placeholder text become null. #}
{% macro clean_text(expr) -%}
    nullif(nullif(nullif(trim({{ attiva.regex_replace_all(expr, '\\s+', ' ') }}), ''), 'n/a'), 'N/A')
{%- endmacro %}

{# Who a record names, for counting how many people share an identifier: its first and last
   name, lower-case, accents and anything but letters dropped ('mario rossi'). A last name
   alone names no one: 'Richard' beside 'Guillaume Richard' would count as a second person
   and set their own email aside as shared. Whether two keys name one person is
   attiva.same_name. #}
{% macro name_key(first_name, last_name) -%}
    {%- set accents = "'àáâäãèéêëìíîïòóôöõùúûüç', 'aaaaaeeeeiiiiooooouuuuc'" -%}
    {%- set first = attiva.regex_replace_all("translate(lower(coalesce(" ~ first_name ~ ", '')), " ~ accents ~ ")", '[^a-z]', '') -%}
    {%- set last = attiva.regex_replace_all("translate(lower(coalesce(" ~ last_name ~ ", '')), " ~ accents ~ ")", '[^a-z]', '') -%}
    case when {{ last }} <> '' and {{ first }} <> '' then {{ first }} || ' ' || {{ last }} end
{%- endmacro %}

{# Two names name one person: rows `a` and `b` with first_name and last_name (as name_key writes
   them) and first_given / last_given (the given name each stands for, seed
   first_name_variants: 'beppe' -> 'giuseppe'; the name itself when it is no variant). The
   same last name and first names alike, or the same written the other way round ('rossi
   mario' on a form that asks for the surname first). First names alike: equal, standing for
   one given name (Beppe, Giuseppe; Fede, Federica), one an initial of the other ('m' beside
   'mario'), or one slip apart with the same first letter ('mrio', 'mario'). Maria and Marco
   Garcia are two, and so are Maria and Maria José: a name that starts another is not its
   short form unless the seed says so. #}
{% macro same_name(a, b) -%}
    (({{ a }}.last_name = {{ b }}.last_name
      and {{ attiva.first_names_alike(a ~ '.first_name', a ~ '.first_given', b ~ '.first_name', b ~ '.first_given') }})
     or ({{ a }}.first_name = {{ b }}.last_name
      and {{ attiva.first_names_alike(a ~ '.last_name', a ~ '.last_given', b ~ '.first_name', b ~ '.first_given') }})
     or ({{ a }}.last_name = {{ b }}.first_name
      and {{ attiva.first_names_alike(a ~ '.first_name', a ~ '.first_given', b ~ '.last_name', b ~ '.last_given') }}))
{%- endmacro %}

{% macro first_names_alike(a, a_given, b, b_given) -%}
    ({{ a }} = {{ b }} or {{ a_given }} = {{ b_given }}
     or (substr({{ a }}, 1, 1) = substr({{ b }}, 1, 1)
         and (length({{ a }}) = 1 or length({{ b }}) = 1 or levenshtein({{ a }}, {{ b }}) <= 1)))
{%- endmacro %}
